// tallyd as a process, at start: a bad config or flag exits 2 naming the field; a damaged store or
// a store of another region exits 1 with a clear message, before anything is served. None of
// these cases gets as far as binding a port.
#include <arpa/inet.h>
#include <fcntl.h>
#include <leveldb/db.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "node/store.h"
#include "temp_dir.h"
#include "version/version.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

const tally::node::StoreIdentity kEu{"startup", "eu", {"eu", "us"}};

struct Outcome {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs tallyd with `args` (stdout and stderr captured, stdin closed) and waits for it to exit.
Outcome RunTallyd(const std::vector<std::string>& args, const fs::path& scratch) {
  const fs::path out = scratch / "stdout.txt";
  const fs::path err = scratch / "stderr.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_s{TALLYD_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, TALLYD_PATH, &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  // Each case exits at start; a test that hangs here found a bug (ctest's timeout stops it).
  REQUIRE(waitpid(pid, &status, 0) == pid);
  Outcome o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.stdout_text = ReadAll(out);
  o.stderr_text = ReadAll(err);
  return o;
}

std::string WriteConfig(const fs::path& dir, const std::string& extra_top = "",
                        const std::string& gossip = "", const std::string& http = "") {
  const fs::path p = dir / "region.toml";
  std::ofstream out(p);
  out << "cluster_id = \"startup\"\nregion = \"eu\"\ndata_dir = \"" << (dir / "data").string()
      << "\"\n"
      << extra_top << "[listen]\nclient = \"127.0.0.1:1\"\npeer = \"127.0.0.1:2\"\n"
      << "[[regions]]\nid = 0\nname = \"eu\"\npeer = \"127.0.0.1:2\"\n"
      << "[[regions]]\nid = 1\nname = \"us\"\npeer = \"127.0.0.1:3\"\n"
      << "[http]\ninsecure_loopback = true\n"
      << http << "[gossip]\ninsecure_loopback = true\n"
      << gossip;
  return p.string();
}

}  // namespace

TEST_CASE("tallyd refuses a bad config with exit status 2, naming the field", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  Outcome o =
      RunTallyd({"--config", WriteConfig(dir.path(), "", "tick_interval_ms = 0\n")}, dir.path());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.stderr_text, Catch::Contains("gossip.tick_interval_ms: must be in 1..1000, got 0"));

  o = RunTallyd({"--config", WriteConfig(dir.path(), "colour = \"blue\"\n")}, dir.path());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.stderr_text, Catch::Contains("colour: unknown key"));

  o = RunTallyd({"--config", (dir.path() / "missing.toml").string()}, dir.path());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.stderr_text, Catch::Contains("cannot be read"));

  o = RunTallyd({"--config", WriteConfig(dir.path()), "--region", "mars"}, dir.path());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.stderr_text, Catch::Contains("--region: 'mars' is not in [[regions]]"));

  o = RunTallyd({"--config", WriteConfig(dir.path()), "--listen-client", "nowhere"}, dir.path());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.stderr_text, Catch::Contains("--listen-client:"));

  o = RunTallyd({"--no-such-flag"}, dir.path());
  CHECK(o.exit_code == 2);

  o = RunTallyd({"--config", WriteConfig(dir.path(), "", "", "io_threads = 0\n")}, dir.path());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.stderr_text, Catch::Contains("http.io_threads: must be in 1..64, got 0"));
}

TEST_CASE("tallyd --version names the version and the git revision, config or not", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  const Outcome o = RunTallyd({"--version"}, dir.path());
  CHECK(o.exit_code == 0);
  CHECK(o.stdout_text == tally::VersionLine("tallyd") + "\n");
  CHECK_THAT(o.stdout_text,
             Catch::StartsWith("tallyd " + std::string(tally::Version()) + " (git "));
}

TEST_CASE("tallyd refuses a damaged store with exit status 1 and says why", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  const fs::path data = dir.path() / "data";
  {
    std::unique_ptr<tally::node::Store> store;
    REQUIRE(tally::node::Store::Open(data.string(), kEu, &store).ok());
  }
  {
    leveldb::DB* db = nullptr;
    REQUIRE(leveldb::DB::Open(leveldb::Options(), data.string(), &db).ok());
    REQUIRE(db->Put(leveldb::WriteOptions(), tally::node::Store::OpKey(1, 1), "\x08garbage").ok());
    delete db;
  }
  Outcome o = RunTallyd({"--config", WriteConfig(dir.path())}, dir.path());
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.stderr_text, Catch::Contains("cannot start: corruption: store " + data.string()));
  CHECK_THAT(o.stderr_text, Catch::Contains("refusing to serve balances"));
}

TEST_CASE("tallyd refuses a data directory of another region with exit status 1", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  const fs::path data = dir.path() / "data";
  {
    std::unique_ptr<tally::node::Store> store;
    REQUIRE(tally::node::Store::Open(
                data.string(), tally::node::StoreIdentity{"startup", "us", {"eu", "us"}}, &store)
                .ok());
  }
  Outcome o = RunTallyd({"--config", WriteConfig(dir.path())}, dir.path());
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.stderr_text, Catch::Contains("belongs to another cluster or region"));
}

TEST_CASE("tallyd exits 1 when it cannot bind its listen address", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  // A port another socket listens on (SO_REUSEADDR does not let a second listener bind it).
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Outcome o =
      RunTallyd({"--config", WriteConfig(dir.path()), "--listen-client", taken}, dir.path());
  ::close(fd);
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.stderr_text, Catch::Contains("listen.client " + taken));
}

TEST_CASE("tallyd exits 1 when its certificates cannot be loaded, naming the file", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  const fs::path p = dir.path() / "tls.toml";
  std::ofstream(p) << "cluster_id = \"startup\"\nregion = \"eu\"\ndata_dir = \""
                   << (dir.path() / "data").string() << "\"\n"
                   << "[listen]\nclient = \"127.0.0.1:1\"\npeer = \"127.0.0.1:2\"\n"
                   << "[[regions]]\nid = 0\nname = \"eu\"\npeer = \"127.0.0.1:2\"\n"
                   << "[[regions]]\nid = 1\nname = \"us\"\npeer = \"127.0.0.1:3\"\n"
                   << "[tls]\nca_file = \"pki/ca.pem\"\ncert_file = \"pki/eu.pem\"\n"
                   << "key_file = \"pki/eu.key\"\n";
  const Outcome o = RunTallyd({"--config", p.string()}, dir.path());
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.stderr_text, Catch::Contains("cannot start: invalid_argument: tls.ca_file " +
                                            (dir.path() / "pki" / "ca.pem").string() +
                                            ": cannot be read: No such file or directory"));
  CHECK_FALSE(fs::exists(dir.path() / "data"));  // refused before the store was touched
}

TEST_CASE("tallyd --log-format json writes one JSON object per log line", "[startup]") {
  tally::test::TempDir dir("tallyd-startup");
  {
    std::unique_ptr<tally::node::Store> store;
    REQUIRE(tally::node::Store::Open((dir.path() / "data").string(),
                                     tally::node::StoreIdentity{"startup", "us", {"eu", "us"}},
                                     &store)
                .ok());
  }
  const Outcome o =
      RunTallyd({"--config", WriteConfig(dir.path()), "--log-format", "json"}, dir.path());
  CHECK(o.exit_code == 1);
  INFO(o.stderr_text);
  std::stringstream in(o.stderr_text);
  int lines = 0, errors = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j.value("region", "") == "eu");
    CHECK(j.contains("time"));
    if (j.value("level", "") == "error") {
      ++errors;
      CHECK_THAT(j.value("msg", ""), Catch::Contains("cannot start"));
    }
  }
  CHECK(lines >= 1);
  CHECK(errors >= 1);
  CHECK(RunTallyd({"--config", WriteConfig(dir.path()), "--log-format", "xml"}, dir.path())
            .exit_code == 2);
}
