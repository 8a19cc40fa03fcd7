// tallyd: the regional service node. See docs/operations.md.
//
//   tallyd --config region.toml [--region NAME] [--data-dir DIR]
//          [--listen-client HOST:PORT] [--listen-peer HOST:PORT] [--log-level LEVEL]
//          [--log-format text|json]
//
// Exit status: 0 clean stop, 1 could not start or had to stop (store, disk, listen address),
// 2 bad command line or config.

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "node/config.h"
#include "node/log.h"
#include "node/node.h"
#include "version/version.h"

int main(int argc, char** argv) {
  using namespace tally::node;
  CLI::App app{"tallyd: the regional service node of tally"};
  app.set_version_flag("--version", tally::VersionLine("tallyd"));
  std::string config_path;
  ConfigOverrides overrides;
  std::string log_level = "info";
  std::string log_format = "text";
  app.add_option("--config", config_path, "TOML config file")->required();
  app.add_option("--region", overrides.region, "this node's region name (overrides `region`)");
  app.add_option("--data-dir", overrides.data_dir, "LevelDB directory (overrides `data_dir`)");
  app.add_option("--listen-client", overrides.listen_client,
                 "HTTP API address IP:PORT (overrides `listen.client`)");
  app.add_option("--listen-peer", overrides.listen_peer,
                 "gossip address IP:PORT (overrides `listen.peer`)");
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text (default) or json: one JSON object per line")
      ->check(CLI::IsMember({"text", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports by exception; this is the program's edge. --help exits 0, errors 2.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  NodeConfig config;
  tally::Status s = LoadConfigFile(config_path, &config);
  if (s.ok()) s = ApplyOverrides(overrides, &config);
  if (!s.ok()) {
    std::fprintf(stderr, "tallyd: %s\n", s.message().c_str());
    return 2;
  }
  const LogLevel level = log_level == "debug"   ? LogLevel::kDebug
                         : log_level == "warn"  ? LogLevel::kWarn
                         : log_level == "error" ? LogLevel::kError
                                                : LogLevel::kInfo;
  InitLog(config.region, level, log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Node> node;
  ConfigLoader reload = [config_path, overrides](NodeConfig* out) {
    NodeConfig next;
    if (tally::Status r = LoadConfigFile(config_path, &next); !r.ok()) return r;
    if (tally::Status r = ApplyOverrides(overrides, &next); !r.ok()) return r;
    *out = std::move(next);
    return tally::Status::OK();
  };
  s = Node::Open(std::move(config), std::move(reload), &node);
  if (!s.ok()) {
    Log(LogLevel::kError, "cannot start: {}", s.ToString());
    if (s.code() == tally::Code::kCorruption)
      Log(LogLevel::kError,
          "the store is damaged; refusing to serve balances from it. Restore the data directory "
          "from a backup. Do not start this region with an empty directory: its op sequence would "
          "restart and collide with ops its peers already hold.");
    return 1;
  }
  return node->Run();
}
