#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef TALLYD_PATH
#error "TALLYD_PATH must name the tallyd binary"
#endif

namespace tally::test {

std::uint16_t FreePort() {
  // The socket stays open (bound, never listening) until this process exits: while it holds the
  // port the kernel hands it to no bind(0) (the proxy's routes, other test processes) and no
  // outgoing connection, so nothing can take it between now and tallyd's bind, nor between a
  // node's stop and its restart. SO_REUSEADDR on both sides lets tallyd bind and listen beside it.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // tallyd children do not inherit it
  if (fd < 0) return 0;
  const int one = 1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  return ntohs(addr.sin_port);  // fd is deliberately left open: it is the reservation
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

double MetricSample(const std::string& page, std::string_view name) {
  std::size_t at = 0;
  while ((at = page.find(name, at)) != std::string::npos) {
    // A sample line starts with the name and a space (HELP and TYPE lines start with '#').
    const bool line_start = at == 0 || page[at - 1] == '\n';
    if (line_start && at + name.size() < page.size() && page[at + name.size()] == ' ') {
      const std::size_t end = page.find('\n', at);
      const std::string value = page.substr(
          at + name.size() + 1, end == std::string::npos ? end : end - at - name.size() - 1);
      return std::stod(value);
    }
    at += name.size();
  }
  return -1;
}

void MakeCerts(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<std::string> script_args = {MAKE_CERTS_PATH};
  script_args.insert(script_args.end(), args.begin(), args.end());
  Process p;
  std::string error;
  std::optional<int> code;
  if (p.Start("/bin/bash", script_args, log, &error)) {
    WaitUntil([&] { return !p.running(); }, 60s, 20ms);
    code = p.ExitCode();
  }
  if (code == 0) return;
  std::ifstream f(log);
  std::stringstream out;
  out << f.rdbuf();
  throw std::runtime_error("scripts/make-certs failed (" + error + "): " + out.str());
}

bool Process::Start(const std::string& program, const std::vector<std::string>& args,
                    const std::filesystem::path& log, std::string* error,
                    const std::vector<std::string>& env) {
  Stop();
  status_.reset();
  const pid_t parent = ::getpid();
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot open log " + log.string();
    return false;
  }
  std::vector<std::string> argv_storage;
  argv_storage.push_back(program);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    *error = "fork failed";
    return false;
  }
  if (pid == 0) {
    // Die with the test binary, whatever way it ends.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    // Nothing else of ours may leak into the child: an inherited copy of a proxy socket would
    // keep a "cut" connection open (Asio does not set close-on-exec).
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
      rlimit lim{};
      const int max_fd = ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 65536
                             ? static_cast<int>(lim.rlim_cur)
                             : 65536;
      for (int f = 3; f < max_fd; ++f) ::close(f);
    }
    for (const std::string& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fd);
  pid_ = pid;
  return true;
}

bool Process::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return r == 0;
}

std::optional<int> Process::ExitCode() {
  running();
  if (status_ && WIFEXITED(*status_)) return WEXITSTATUS(*status_);
  return std::nullopt;
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (!running()) {
    int st = status_.value_or(-1);
    pid_ = -1;
    return st;
  }
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) break;
    std::this_thread::sleep_for(10ms);
  }
  if (running()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = st;
  }
  int st = status_.value_or(-1);
  pid_ = -1;
  return st;
}

void Process::Kill9() {
  if (pid_ <= 0 || !running()) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = st;
  pid_ = -1;
}

std::string Reply::error_code() const {
  if (body.is_object() && body.contains("error") && body["error"].is_object() &&
      body["error"].contains("code") && body["error"]["code"].is_string())
    return body["error"]["code"].get<std::string>();
  return "";
}

std::string Reply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  }
  return "";
}

namespace {

ctl::Url MustParse(const std::string& url) {
  ctl::Url u;
  std::string error;
  if (!ctl::Url::Parse(url, &u, &error)) throw std::runtime_error(error);
  return u;
}

Reply ToReply(bool ok, const ctl::HttpResponse& res, const std::string& error) {
  Reply r;
  if (!ok) {
    r.transport_error = error;
    return r;
  }
  r.status = res.status;
  r.raw = res.body;
  r.headers = res.headers;
  r.body = json::parse(res.body, nullptr, false);
  if (r.body.is_discarded()) r.body = nullptr;
  return r;
}

}  // namespace

Api::Api(const std::string& url, std::string token, std::chrono::milliseconds timeout,
         const std::string& ca_file)
    : url_(url),
      token_(std::move(token)),
      client_(MustParse(url), timeout, ctl::ClientTls{ca_file}) {}

Reply Api::Call(const std::string& method, const std::string& target, const std::string& body,
                ctl::Headers headers) {
  headers.emplace_back("Authorization", "Bearer " + token_);
  return CallNoAuth(method, target, body, headers);
}

Reply Api::CallNoAuth(const std::string& method, const std::string& target, const std::string& body,
                      const ctl::Headers& headers) {
  ctl::HttpResponse res;
  std::string error;
  bool ok = client_.Request(method, target, body, headers, &res, &error);
  return ToReply(ok, res, error);
}

Reply Api::Raw(const std::string& bytes) {
  ctl::HttpResponse res;
  std::string error;
  bool ok = client_.RawRequest(bytes, &res, &error);
  return ToReply(ok, res, error);
}

Reply Api::Open(const std::string& id, std::int64_t overdraft_limit, std::int64_t fee_flat,
                std::int64_t fee_bps, const std::string& currency) {
  json body = {{"id", id},
               {"currency", currency},
               {"overdraft_limit", overdraft_limit},
               {"fee", {{"flat", fee_flat}, {"bps", fee_bps}}}};
  return Call("POST", "/v1/accounts", body.dump());
}

Reply Api::Credit(const std::string& id, std::int64_t amount, const std::string& key) {
  return Call("POST", "/v1/accounts/" + id + "/credits", json{{"amount", amount}}.dump(),
              {{"Idempotency-Key", key}});
}

Reply Api::Debit(const std::string& id, std::int64_t amount, const std::string& key) {
  return Call("POST", "/v1/accounts/" + id + "/debits", json{{"amount", amount}}.dump(),
              {{"Idempotency-Key", key}});
}

Reply Api::Transfer(const std::string& from, const std::string& to, std::int64_t amount,
                    const std::string& key) {
  return Call("POST", "/v1/transfers", json{{"from", from}, {"to", to}, {"amount", amount}}.dump(),
              {{"Idempotency-Key", key}});
}

Reply Api::Hold(const std::string& id, std::int64_t amount, const std::string& key,
                std::int64_t expires_in_ms) {
  return Call("POST", "/v1/accounts/" + id + "/holds",
              json{{"amount", amount}, {"expires_in_ms", expires_in_ms}}.dump(),
              {{"Idempotency-Key", key}});
}

Reply Api::Capture(const std::string& hold, std::int64_t amount) {
  return Call("POST", "/v1/holds/" + hold + "/capture",
              amount == 0 ? std::string("{}") : json{{"amount", amount}}.dump());
}

Reply Api::Release(const std::string& hold) {
  return Call("POST", "/v1/holds/" + hold + "/release");
}

Reply Api::GetHold(const std::string& hold) { return Call("GET", "/v1/holds/" + hold); }

Reply Api::Rights(const std::string& id, const std::string& to, std::int64_t amount,
                  const std::string& key) {
  ctl::Headers headers;
  if (!key.empty()) headers.emplace_back("Idempotency-Key", key);
  return Call("POST", "/v1/accounts/" + id + "/rights", json{{"to", to}, {"amount", amount}}.dump(),
              std::move(headers));
}

Reply Api::Account(const std::string& id) { return Call("GET", "/v1/accounts/" + id); }
Reply Api::Report(const std::string& id) { return Call("GET", "/v1/accounts/" + id + "/report"); }
Reply Api::Cluster() { return Call("GET", "/v1/cluster"); }

std::string RegionToml(const std::string& cluster_id, const std::vector<std::string>& regions,
                       std::size_t self, const std::filesystem::path& data_dir,
                       std::uint16_t client_port, std::uint16_t peer_port,
                       const std::vector<std::uint16_t>& dial_ports, const std::string& gossip,
                       bool default_timings, const std::filesystem::path& pki) {
  std::ostringstream t;
  t << "cluster_id = \"" << cluster_id << "\"\n"
    << "region = \"" << regions[self] << "\"\n"
    << "data_dir = \"" << data_dir.string() << "\"\n\n"
    << "[listen]\nclient = \"127.0.0.1:" << client_port << "\"\npeer = \"127.0.0.1:" << peer_port
    << "\"\n\n";
  for (std::size_t r = 0; r < regions.size(); ++r) {
    t << "[[regions]]\nid = " << r << "\nname = \"" << regions[r]
      << "\"\npeer = \"127.0.0.1:" << (r == self ? peer_port : dial_ports[r]) << "\"\n\n";
  }
  // Fast timings so partitions are noticed and healed within a test's patience.
  t << "[gossip]\n";
  if (!default_timings)
    t << "heartbeat_interval_ms = 50\npeer_timeout_ms = 400\nresend_after_ms = 200\n";
  t << "reconnect_min_ms = 50\nreconnect_max_ms = 300\n" << gossip;
  if (pki.empty()) {
    t << "insecure_loopback = true\n\n[http]\ninsecure_loopback = true\n\n";
  } else {
    t << "\n[tls]\nca_file = \"" << (pki / "ca.pem").string() << "\"\ncert_file = \""
      << (pki / (regions[self] + ".pem")).string() << "\"\nkey_file = \""
      << (pki / (regions[self] + ".key")).string() << "\"\n\n";
  }
  if (!default_timings) t << "[rights]\nwait_ms = 50\n\n";
  t << "[roles.admin]\npermissions = [\"open_accounts\", \"credit\", \"debit\", \"rights\", "
       "\"read\", \"read_reports\", \"cluster\", \"backup\"]\n"
    << "[roles.reader]\npermissions = [\"read\"]\n"
    << "[roles.teller]\npermissions = [\"credit\", \"debit\", \"read\"]\n\n"
    << "[[tokens]]\nname = \"admin\"\nsha256 = \"" << Sha256Hex(kAdminToken)
    << "\"\nrole = \"admin\"\naccounts = [\"*\"]\n\n"
    << "[[tokens]]\nname = \"reader\"\nsha256 = \"" << Sha256Hex(kReaderToken)
    << "\"\nrole = \"reader\"\naccounts = [\"*\"]\n\n"
    << "[[tokens]]\nname = \"shop\"\nsha256 = \"" << Sha256Hex(kShopToken)
    << "\"\nrole = \"teller\"\naccounts = [\"shop-*\"]\n\n";
  return t.str();
}

Cluster::Cluster(const std::string& tag, ClusterOptions options)
    : options_(std::move(options)), dir_(tag) {
  const std::size_t n = options_.regions.size();
  nodes_.resize(n);
  for (auto& node : nodes_) {
    node.client_port = FreePort();
    node.peer_port = FreePort();
    node.dial_port.assign(n, 0);
    node.process = std::make_unique<Process>();
  }
  if (options_.tls) {
    std::vector<std::string> args = {pki_dir().string(), options_.cluster_id};
    args.insert(args.end(), options_.regions.begin(), options_.regions.end());
    MakeCerts(args, dir_.path() / "make-certs.log");
  }
  if (options_.proxied) proxy_ = std::make_unique<ctl::NetProxy>();
  for (std::size_t a = 0; a < n; ++a) {
    for (std::size_t b = 0; b < n; ++b) {
      if (a == b) continue;
      if (!proxy_) {
        nodes_[a].dial_port[b] = nodes_[b].peer_port;
        continue;
      }
      std::uint16_t bound = 0;
      std::string error;
      if (!proxy_->AddRoute(LinkName(a, b), 0, "127.0.0.1", nodes_[b].peer_port, &bound, &error))
        throw std::runtime_error(error);
      nodes_[a].dial_port[b] = bound;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::filesystem::create_directories(dir_.path() / options_.regions[i]);
    std::ofstream(dir_.path() / (options_.regions[i] + ".toml")) << ConfigText(i);
  }
}

Cluster::~Cluster() {
  for (auto& node : nodes_) node.process->Stop();
  proxy_.reset();
}

std::string Cluster::ConfigText(std::size_t i) const {
  return RegionToml(options_.cluster_id, options_.regions, i, data_dir(i), nodes_[i].client_port,
                    nodes_[i].peer_port, nodes_[i].dial_port, options_.gossip_toml,
                    options_.default_timings, options_.tls ? pki_dir() : std::filesystem::path()) +
         options_.extra_toml;
}

std::filesystem::path Cluster::WriteConfig(const std::string& name, const std::string& toml) const {
  auto p = dir_.path() / (name + ".toml");
  std::ofstream(p) << toml;
  return p;
}

std::string Cluster::url(std::size_t i) const {
  return (options_.tls ? "https://127.0.0.1:" : "http://127.0.0.1:") +
         std::to_string(nodes_[i].client_port);
}

std::string Cluster::ca_file() const { return options_.tls ? (pki_dir() / "ca.pem").string() : ""; }

std::vector<std::string> Cluster::CtlArgs(std::size_t i) const {
  std::vector<std::string> args = {"--url", url(i)};
  if (options_.tls) {
    args.push_back("--cacert");
    args.push_back(ca_file());
  }
  return args;
}

std::filesystem::path Cluster::log_path(std::size_t i) const {
  return dir_.path() / (options_.regions[i] + ".log");
}

std::filesystem::path Cluster::data_dir(std::size_t i) const {
  return dir_.path() / options_.regions[i] / "data";
}

std::string Cluster::ReadLog(std::size_t i) const {
  std::ifstream f(log_path(i));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool Cluster::Start(std::size_t i, std::string* error) {
  Node& node = nodes_[i];
  const auto config = dir_.path() / (options_.regions[i] + ".toml");
  const std::vector<std::string> no_env;
  const std::vector<std::string>& env = i < options_.env.size() ? options_.env[i] : no_env;
  if (!node.process->Start(TALLYD_PATH, {"--config", config.string()}, log_path(i), error, env))
    return false;
  Api health(url(i), "", 2s, ca_file());
  bool up = WaitUntil(
      [&] {
        if (!node.process->running()) return true;  // exited: report below
        return health.CallNoAuth("GET", "/healthz").status == 200;
      },
      20s);
  if (!up || !node.process->running()) {
    std::string log = ReadLog(i);
    if (log.size() > 2000) log = log.substr(log.size() - 2000);
    *error = "tallyd " + options_.regions[i] +
             (up ? " exited at start" : " not healthy within 20 s") + "; log tail:\n" + log;
    return false;
  }
  return true;
}

bool Cluster::StartAll(std::string* error) {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (!Start(i, error)) return false;
  return true;
}

int Cluster::Stop(std::size_t i) { return nodes_[i].process->Stop(); }
void Cluster::Kill9(std::size_t i) { nodes_[i].process->Kill9(); }
bool Cluster::Running(std::size_t i) { return nodes_[i].process->running(); }

bool Cluster::WaitConnected(std::chrono::milliseconds timeout) {
  return WaitUntil(
      [&] {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
          if (!nodes_[i].process->running()) continue;
          Reply r = api(i).Cluster();
          if (r.status != 200 || !r.body.contains("peers")) return false;
          if (r.body.value("rejoining", true)) return false;  // writes are refused until rejoined
          std::size_t ok = 0;
          for (const auto& p : r.body["peers"])
            if (p.value("connected", false) && p.value("reachable", false)) ++ok;
          if (ok + 1 < nodes_.size()) return false;
        }
        return true;
      },
      timeout, 100ms);
}

std::string Cluster::LinkName(std::size_t a, std::size_t b) const {
  const std::string& x = options_.regions[a];
  const std::string& y = options_.regions[b];
  return x < y ? x + "-" + y : y + "-" + x;
}

void Cluster::Cut(std::size_t a, std::size_t b) {
  if (proxy_) proxy_->Cut(LinkName(a, b));
}
void Cluster::Heal(std::size_t a, std::size_t b) {
  if (proxy_) proxy_->Heal(LinkName(a, b));
}
void Cluster::CutAll() {
  for (std::size_t a = 0; a < nodes_.size(); ++a)
    for (std::size_t b = a + 1; b < nodes_.size(); ++b) Cut(a, b);
}
void Cluster::DelayAll(std::chrono::milliseconds one_way) {
  if (!proxy_) return;
  for (std::size_t a = 0; a < nodes_.size(); ++a)
    for (std::size_t b = a + 1; b < nodes_.size(); ++b) proxy_->SetDelay(LinkName(a, b), one_way);
}
void Cluster::HealAll() {
  for (std::size_t a = 0; a < nodes_.size(); ++a)
    for (std::size_t b = a + 1; b < nodes_.size(); ++b) Heal(a, b);
}

std::string Cluster::ProxyState() const {
  if (!proxy_) return "(no proxy)";
  std::string out;
  for (const auto& l : proxy_->Links()) {
    out += l.name + (l.cut ? " CUT" : " up") + ", open " + std::to_string(l.open_connections) +
           ", accepted " + std::to_string(l.accepted) + ", refused " +
           std::to_string(l.refused_while_cut) + ", bytes " + std::to_string(l.bytes_forwarded) +
           "\n";
  }
  return out;
}

ctl::Agreement Cluster::Compare(const std::string& account, const std::vector<std::size_t>& nodes) {
  std::vector<std::size_t> asked = nodes;
  if (asked.empty())
    for (std::size_t i = 0; i < nodes_.size(); ++i) asked.push_back(i);
  std::vector<ctl::NodeAnswer> answers;
  for (std::size_t i : asked) {
    ctl::NodeAnswer a;
    a.url = url(i);
    a.region = options_.regions[i];
    Api api(url(i), kAdminToken, 5s, ca_file());
    Reply acc = api.Account(account);
    Reply rep = api.Report(account);
    if (acc.status != 200 || rep.status != 200) {
      a.error = "account: " + std::to_string(acc.status) + " " + acc.raw + acc.transport_error +
                "; report: " + std::to_string(rep.status) + rep.transport_error;
    } else {
      a.account = acc.body;
      a.report = rep.body;
    }
    answers.push_back(std::move(a));
  }
  return ctl::CompareAnswers(account, answers);
}

ctl::Agreement Cluster::WaitAgree(const std::string& account, std::chrono::milliseconds timeout,
                                  const std::vector<std::size_t>& nodes) {
  ctl::Agreement last;
  WaitUntil(
      [&] {
        last = Compare(account, nodes);
        return last.agree;
      },
      timeout, 100ms);
  return last;
}

}  // namespace tally::test
