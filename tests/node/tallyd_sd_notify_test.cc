// SdNotify (node/sd_notify.h) against a real datagram socket, as systemd listens for a
// Type=notify service; and the packaged example config (packaging/tally.toml.example).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>

#include "node/config.h"
#include "node/sd_notify.h"
#include "temp_dir.h"

using namespace tally;
using namespace tally::node;

namespace {

// A datagram socket bound at `path` ("@name": abstract); -1 on failure.
int Listen(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) return -1;
  return fd;
}

std::string Receive(int fd) {
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

TEST_CASE("SdNotify tells the socket in $NOTIFY_SOCKET, and nothing without one", "[sd_notify]") {
  tally::test::TempDir dir("sd-notify");
  const std::string path = (dir.path() / "notify").string();
  const int fd = Listen(path);
  REQUIRE(fd >= 0);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  CHECK(SdNotify("READY=1"));
  CHECK(Receive(fd) == "READY=1");
  CHECK(SdNotify("STOPPING=1"));
  CHECK(Receive(fd) == "STOPPING=1");
  ::close(fd);

  const std::string abstract = "@tally-sd-notify-test-" + std::to_string(::getpid());
  const int afd = Listen(abstract);
  REQUIRE(afd >= 0);
  ::setenv("NOTIFY_SOCKET", abstract.c_str(), 1);
  CHECK(SdNotify("RELOADING=1"));
  CHECK(Receive(afd) == "RELOADING=1");
  ::close(afd);

  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  CHECK_FALSE(SdNotify("READY=1"));
  ::unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(SdNotify("READY=1"));
}

TEST_CASE("the packaged example config parses and carries no token", "[config]") {
  NodeConfig c;
  Status s = LoadConfigFile(TALLY_SOURCE_DIR "/packaging/tally.toml.example", &c);
  INFO(s.ToString());
  REQUIRE(s.ok());
  CHECK(c.tokens.empty());
  CHECK(c.regions.size() == 3);
  CHECK_FALSE(c.insecure_loopback);
  CHECK_FALSE(c.http_insecure_loopback);
  // Relative to the file: /etc/tally/pki/ca.pem once installed.
  CHECK(c.tls.ca_file == TALLY_SOURCE_DIR "/packaging/pki/ca.pem");
  CHECK(c.audit_path == "/var/log/tally/audit.jsonl");
}
