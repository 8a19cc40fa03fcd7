// tallyd's config parsing: a valid file parses into the fields it states; every kind of mistake is
// refused with a message that names the field.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "node/config.h"
#include "temp_dir.h"

using namespace tally;
using namespace tally::node;

namespace {

const std::string kValid = R"(
cluster_id = "test"
region = "us"
data_dir = "/tmp/x"

[listen]
client = "127.0.0.1:8082"
peer = "127.0.0.1:9082"

[[regions]]
id = 0
name = "eu"
peer = "127.0.0.1:9081"

[[regions]]
id = 1
name = "us"
peer = "node-us.internal:9082"

[gossip]
tick_interval_ms = 7
max_batch_ops = 100
max_inflight_ops = 1000

[tls]
ca_file = "/etc/tally/ca.pem"
cert_file = "/etc/tally/us.pem"
key_file = "/etc/tally/us.key"

[clock]
max_offset_ms = 250

[accounts]
currency = "USD"
overdraft_limit = 500
fee_flat = 3
fee_bps = 25

[roles.teller]
permissions = ["credit", "debit", "read"]

[[tokens]]
name = "app"
sha256 = "94494f00a557cf5a0cea8d19380d35fa82c5ae93d55e73678c3caf0dd159beee"
role = "teller"
accounts = ["shop-*"]
)";

// Replaces the first occurrence of `from` in kValid.
std::string With(const std::string& from, const std::string& to) {
  std::string s = kValid;
  std::size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  return s;
}

std::string ErrorOf(const std::string& toml) {
  NodeConfig c;
  Status s = ParseConfig(toml, "t.toml", &c);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kInvalidArgument);
  return s.message();
}

}  // namespace

TEST_CASE("a valid config parses into what it says", "[config]") {
  NodeConfig c;
  Status s = ParseConfig(kValid, "t.toml", &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.cluster_id == "test");
  CHECK(c.self == 1);
  REQUIRE(c.regions.size() == 2);
  CHECK(c.regions[1].peer.host == "node-us.internal");
  CHECK(c.regions[1].peer.port == 9082);
  CHECK(c.listen_client.ToString() == "127.0.0.1:8082");
  CHECK(c.tick_interval_ms == 7);
  CHECK(c.replica.max_batch_ops == 100);
  CHECK(c.replica.max_clock_offset_ms == 250);
  CHECK(c.replica.regions == std::vector<std::string>{"eu", "us"});
  CHECK(c.replica.self == 1);
  CHECK(c.default_currency == "USD");
  CHECK(c.default_overdraft_limit == 500);
  CHECK(c.default_fee == FeePolicy{3, 25});
  CHECK(c.replica.heartbeat_interval_ms == 100);  // a default
  CHECK(c.tls.ca_file == "/etc/tally/ca.pem");
  CHECK(c.tls.cert_file == "/etc/tally/us.pem");
  CHECK(c.tls.key_file == "/etc/tally/us.key");
  CHECK_FALSE(c.insecure_loopback);
  REQUIRE(c.tokens.size() == 1);
  CHECK(c.roles.at("teller") ==
        (PermissionBit(Permission::kCredit) | PermissionBit(Permission::kDebit) |
         PermissionBit(Permission::kRead)));
}

TEST_CASE("[http] io_threads: a default by core count, 1..64, and a clear error", "[config]") {
  NodeConfig c;
  REQUIRE(ParseConfig(kValid, "t.toml", &c).ok());
  CHECK(c.io_threads == DefaultIoThreads());
  CHECK(DefaultIoThreads() >= 1);
  CHECK(DefaultIoThreads() <= 8);
  REQUIRE(ParseConfig(kValid + "\n[http]\nio_threads = 4\n", "t.toml", &c).ok());
  CHECK(c.io_threads == 4);
  REQUIRE(ParseConfig(kValid + "\n[http]\nio_threads = 1\n", "t.toml", &c).ok());
  CHECK(c.io_threads == 1);
  CHECK_THAT(ErrorOf(kValid + "\n[http]\nio_threads = 0\n"), Catch::Contains("http.io_threads"));
  CHECK_THAT(ErrorOf(kValid + "\n[http]\nio_threads = 65\n"), Catch::Contains("http.io_threads"));
  CHECK_THAT(ErrorOf(kValid + "\n[http]\nio_threads = \"many\"\n"),
             Catch::Contains("http.io_threads: must be an integer, got a string"));
}

TEST_CASE("[rejoin] wait_ms bounds the wait for silent peers, and 0 waits for every peer",
          "[config]") {
  NodeConfig c;
  REQUIRE(ParseConfig(kValid, "t.toml", &c).ok());
  CHECK(c.replica.rejoin_wait_ms == 0);  // the default: wait for every peer
  REQUIRE(ParseConfig(kValid + "\n[rejoin]\nwait_ms = 0\n", "t.toml", &c).ok());
  CHECK(c.replica.rejoin_wait_ms == 0);
  REQUIRE(ParseConfig(kValid + "\n[rejoin]\nwait_ms = 60000\n", "t.toml", &c).ok());
  CHECK(c.replica.rejoin_wait_ms == 60000);
  CHECK_THAT(ErrorOf(kValid + "\n[rejoin]\nwait_ms = -1\n"), Catch::Contains("rejoin.wait_ms"));
  CHECK_THAT(ErrorOf(kValid + "\n[rejoin]\nwait_ms = \"10s\"\n"),
             Catch::Contains("rejoin.wait_ms: must be an integer, got a string"));
}

TEST_CASE("[gossip] bounds on the peer port: defaults, values and errors", "[config]") {
  NodeConfig c;
  REQUIRE(ParseConfig(kValid, "t.toml", &c).ok());
  CHECK(c.handshake_timeout_ms == 5000);  // the defaults
  CHECK(c.max_handshakes == 32);
  CHECK(c.max_handshakes_per_address == 4);
  CHECK(c.receive_buffer_bytes == std::size_t{64} << 20);

  auto gossip = [](const std::string& lines) {
    return With("max_inflight_ops = 1000", "max_inflight_ops = 1000\n" + lines);
  };
  Status s = ParseConfig(gossip("handshake_timeout_ms = 750\nmax_handshakes = 100\n"
                                "max_handshakes_per_address = 100\n"
                                "receive_buffer_bytes = 4194308\n"),
                         "t.toml", &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.handshake_timeout_ms == 750);
  CHECK(c.max_handshakes == 100);
  CHECK(c.max_handshakes_per_address == 100);
  CHECK(c.receive_buffer_bytes == 4194308);  // one whole frame: the least allowed
  REQUIRE(ParseConfig(gossip("max_handshakes = 2\n"), "t.toml", &c).ok());
  CHECK(c.max_handshakes_per_address == 2);  // the default (4), capped by the total

  CHECK_THAT(ErrorOf(gossip("handshake_timeout_ms = 0")),
             Catch::Contains("gossip.handshake_timeout_ms: must be in 100..3600000, got 0"));
  CHECK_THAT(ErrorOf(gossip("handshake_timeout_ms = \"5s\"")),
             Catch::Contains("gossip.handshake_timeout_ms: must be an integer, got a string"));
  CHECK_THAT(ErrorOf(gossip("max_handshakes = 0")),
             Catch::Contains("gossip.max_handshakes: must be in 1..65536, got 0"));
  CHECK_THAT(ErrorOf(gossip("max_handshakes_per_address = 0")),
             Catch::Contains("gossip.max_handshakes_per_address: must be in 1..65536, got 0"));
  CHECK_THAT(
      ErrorOf(gossip("max_handshakes = 8\nmax_handshakes_per_address = 9")),
      Catch::Contains("gossip.max_handshakes_per_address: must be <= gossip.max_handshakes"));
  CHECK_THAT(ErrorOf(gossip("receive_buffer_bytes = 4194307")),
             Catch::Contains("gossip.receive_buffer_bytes: must be in 4194308..4294967296, got "
                             "4194307"));
  CHECK_THAT(ErrorOf(gossip("max_handshake = 8")),
             Catch::Contains("gossip.max_handshake: unknown key"));
}

TEST_CASE("gossip is mutual TLS unless insecure_loopback says otherwise, on loopback only",
          "[config]") {
  const std::string tls_table =
      "[tls]\nca_file = \"/etc/tally/ca.pem\"\ncert_file = \"/etc/tally/us.pem\"\n"
      "key_file = \"/etc/tally/us.key\"\n";
  const std::string no_tls = With(tls_table, "");
  CHECK_THAT(ErrorOf(no_tls),
             Catch::Contains("tls: gossip between regions is mutual TLS: set [tls] ca_file, "
                             "cert_file and key_file"));
  CHECK_THAT(ErrorOf(With("key_file = \"/etc/tally/us.key\"\n", "")),
             Catch::Contains("tls.key_file: is required"));
  CHECK_THAT(ErrorOf(With("ca_file = \"/etc/tally/ca.pem\"", "ca_file = \"\"")),
             Catch::Contains("tls.ca_file: is empty"));
  CHECK_THAT(ErrorOf(With("key_file = \"/etc/tally/us.key\"", "key_file = \"k\"\nkey = 1")),
             Catch::Contains("tls.key: unknown key"));

  // Plain TCP gossip: only where every peer address is a loopback one.
  const std::string insecure = "max_inflight_ops = 1000\ninsecure_loopback = true";
  CHECK_THAT(ErrorOf(With("max_inflight_ops = 1000", insecure)),
             Catch::Contains("gossip.insecure_loopback: region us's peer address "
                             "node-us.internal:9082 is not a loopback address"));
  const std::string all_loopback = [&] {
    std::string s = With("node-us.internal:9082", "127.0.0.2:9082");
    std::size_t at = s.find("max_inflight_ops = 1000");
    return s.replace(at, 23, insecure);
  }();
  NodeConfig c;
  Status s = ParseConfig(all_loopback, "t.toml", &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.insecure_loopback);
  ConfigOverrides o;
  o.listen_peer = "10.0.0.1:9082";
  CHECK_THAT(ApplyOverrides(o, &c).message(),
             Catch::Contains("gossip.insecure_loopback: listen.peer 10.0.0.1:9082 is not a "
                             "loopback address"));
  CHECK(c.listen_peer.ToString() == "127.0.0.1:9082");  // unchanged on error

  // The client API is HTTPS too, unless http.insecure_loopback, on a loopback listen.client only.
  const std::string gossip_only = With(tls_table, "");
  const std::string plain_gossip = [&] {
    std::string s = all_loopback;
    std::size_t at = s.find(tls_table);
    return s.replace(at, tls_table.size(), "");
  }();
  CHECK_THAT(ErrorOf(plain_gossip), Catch::Contains("tls: the client API is HTTPS: set [tls]"));
  const std::string both_plain = plain_gossip + "\n[http]\ninsecure_loopback = true\n";
  s = ParseConfig(both_plain, "t.toml", &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.http_insecure_loopback);
  ConfigOverrides public_client;
  public_client.listen_client = "10.0.0.1:8082";
  CHECK_THAT(ApplyOverrides(public_client, &c).message(),
             Catch::Contains("http.insecure_loopback: listen.client 10.0.0.1:8082 is not a "
                             "loopback address"));

  // A separate certificate for the API: both files or neither.
  CHECK(ParseConfig(With("[tls]", "[tls]\napi_cert_file = \"/a.pem\"\napi_key_file = \"/a.key\""),
                    "t.toml", &c)
            .ok());
  CHECK(c.tls.api_cert_file == "/a.pem");
  CHECK_THAT(ErrorOf(With("[tls]", "[tls]\napi_cert_file = \"/a.pem\"")),
             Catch::Contains("tls.api_key_file: is required with tls.api_cert_file"));
}

TEST_CASE("certificate paths are relative to the config file's folder", "[config]") {
  tally::test::TempDir dir("config-tls-paths");
  const std::string relative =
      With("ca_file = \"/etc/tally/ca.pem\"\ncert_file = \"/etc/tally/us.pem\"",
           "ca_file = \"pki/ca.pem\"\ncert_file = \"../us.pem\"");
  const auto path = dir.path() / "conf" / "region.toml";
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << relative;
  NodeConfig c;
  Status s = LoadConfigFile(path.string(), &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.tls.ca_file == (dir.path() / "conf" / "pki" / "ca.pem").string());
  CHECK(c.tls.cert_file == (dir.path() / "us.pem").string());
  CHECK(c.tls.key_file == "/etc/tally/us.key");
}

TEST_CASE("the shipped example config parses", "[config]") {
  NodeConfig c;
  Status s = LoadConfigFile(TALLY_SOURCE_DIR "/src/node/example-region.toml", &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.regions.size() == 3);
  CHECK(c.tokens.size() == 3);
}

TEST_CASE("config errors name the field", "[config]") {
  CHECK_THAT(ErrorOf(With("cluster_id = \"test\"\n", "")),
             Catch::Contains("cluster_id: is required"));
  CHECK_THAT(ErrorOf(With("cluster_id = \"test\"", "cluster_id = \"a b\"")),
             Catch::Contains("cluster_id: cluster id may contain only printable ASCII"));
  CHECK_THAT(ErrorOf(With("region = \"us\"", "region = \"mars\"")),
             Catch::Contains("region: 'mars' is not in [[regions]] (eu, us)"));
  CHECK_THAT(ErrorOf(With("id = 1", "id = 0")),
             Catch::Contains("regions[1].id: region id 0 is used twice"));
  CHECK_THAT(ErrorOf(With("id = 1", "id = 2")),
             Catch::Contains("regions[1].id: must be in 0..1, got 2"));
  CHECK_THAT(ErrorOf(With("name = \"us\"", "name = \"US\"")), Catch::Contains("regions[1].name:"));
  CHECK_THAT(ErrorOf(With("name = \"us\"", "name = \"eu\"")),
             Catch::Contains("regions[1].name: region name 'eu' is used twice"));
  CHECK_THAT(ErrorOf(With("peer = \"127.0.0.1:9081\"", "peer = \"127.0.0.1\"")),
             Catch::Contains("regions[0].peer: expected \"host:port\""));
  CHECK_THAT(ErrorOf(With("peer = \"127.0.0.1:9081\"", "peer = \"127.0.0.1:70000\"")),
             Catch::Contains("regions[0].peer: port must be 1..65535"));
  CHECK_THAT(ErrorOf(With("client = \"127.0.0.1:8082\"", "client = \"localhost:8082\"")),
             Catch::Contains("listen.client: \"localhost\" is not an IP address"));
  CHECK_THAT(ErrorOf(With("tick_interval_ms = 7", "tick_interval_ms = 0")),
             Catch::Contains("gossip.tick_interval_ms: must be in 1..1000, got 0"));
  CHECK_THAT(ErrorOf(With("tick_interval_ms = 7", "tick_interval_ms = \"7\"")),
             Catch::Contains("gossip.tick_interval_ms: must be an integer, got a string"));
  CHECK_THAT(ErrorOf(With("tick_interval_ms = 7", "tick_interval_ms = 7.5")),
             Catch::Contains("gossip.tick_interval_ms: must be an integer, got a float"));
  CHECK_THAT(ErrorOf(With("tick_interval_ms = 7", "tick_ms = 7")),
             Catch::Contains("gossip.tick_ms: unknown key"));
  CHECK_THAT(ErrorOf(With("data_dir = \"/tmp/x\"", "data_dir = \"/tmp/x\"\ndatadir = \"/tmp/y\"")),
             Catch::Contains("datadir: unknown key"));
  CHECK_THAT(ErrorOf(With("max_inflight_ops = 1000", "max_inflight_ops = 10")),
             Catch::Contains("gossip.max_inflight_ops: must be >= gossip.max_batch_ops"));
  CHECK_THAT(ErrorOf(With("currency = \"USD\"", "currency = \"usd\"")),
             Catch::Contains("accounts.currency:"));
  CHECK_THAT(ErrorOf(With("fee_bps = 25", "fee_bps = 10001")),
             Catch::Contains("accounts.fee_bps: must be in 0..10000, got 10001"));
  CHECK_THAT(ErrorOf(With("\"read\"]", "\"read\", \"delete\"]")),
             Catch::Contains("roles.teller.permissions[3]: unknown permission 'delete'"));
  CHECK_THAT(ErrorOf(With("sha256 = \"9449", "sha256 = \"X449")),
             Catch::Contains("tokens[0].sha256:"));
  CHECK_THAT(ErrorOf(With("role = \"teller\"", "role = \"boss\"")),
             Catch::Contains("tokens[0].role: unknown role 'boss'"));
  CHECK_THAT(ErrorOf(With("[\"shop-*\"]", "[\"shop *\"]")),
             Catch::Contains("tokens[0].accounts[0]:"));
  CHECK_THAT(ErrorOf(With("region = \"us\"", "region = \"us")),
             Catch::Contains("config t.toml: line 3"));
  CHECK_THAT(ErrorOf(With("[listen]", "[listen]\nclient = 5\n[other]")),
             Catch::Contains("listen.client: must be a string, got an integer"));
  CHECK_THAT(ErrorOf(With("[listen]", "[durability]\ndefault = \"sometimes\"\n[listen]")),
             Catch::Contains("durability.default: must be \"local\" or \"replicated\""));
  CHECK_THAT(ErrorOf(With("[listen]", "[durability]\nwait_ms = 0\n[listen]")),
             Catch::Contains("durability.wait_ms: must be in 1..3600000, got 0"));
}

TEST_CASE("command-line overrides replace config fields and are checked", "[config]") {
  NodeConfig c;
  REQUIRE(ParseConfig(kValid, "t.toml", &c).ok());

  ConfigOverrides o;
  o.region = "eu";
  o.listen_client = "127.0.0.1:18081";
  o.data_dir = "/tmp/eu";
  REQUIRE(ApplyOverrides(o, &c).ok());
  CHECK(c.self == 0);
  CHECK(c.replica.self == 0);
  CHECK(c.listen_client.port == 18081);
  CHECK(c.data_dir == "/tmp/eu");

  ConfigOverrides bad_region;
  bad_region.region = "mars";
  Status s = ApplyOverrides(bad_region, &c);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::StartsWith("--region: 'mars'"));
  CHECK(c.self == 0);  // unchanged on error

  ConfigOverrides bad_listen;
  bad_listen.listen_peer = "nowhere";
  s = ApplyOverrides(bad_listen, &c);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::StartsWith("--listen-peer:"));
}

TEST_CASE("endpoints: IPv4, bracketed IPv6 and (for peers) host names", "[config]") {
  Endpoint e;
  REQUIRE(ParseEndpoint("[::1]:9000", false, &e).ok());
  CHECK(e.host == "::1");
  CHECK(e.ToString() == "[::1]:9000");
  CHECK_FALSE(ParseEndpoint("::1:9000", false, &e).ok());
  CHECK_FALSE(ParseEndpoint("host:9000", false, &e).ok());
  CHECK(ParseEndpoint("host:9000", true, &e).ok());
  CHECK_FALSE(ParseEndpoint("host:0", true, &e).ok());
  CHECK_FALSE(ParseEndpoint("host:9x", true, &e).ok());
  CHECK_FALSE(ParseEndpoint("ho st:90", true, &e).ok());
}
