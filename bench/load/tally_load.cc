// tally-load: drives durable debits through tallyd's HTTP API and measures throughput and latency.
//
// Closed loop: N keep-alive connections, each with one request in flight (pipeline depth 1), each
// debit with its own idempotency key, spread round-robin over one or several tallyd URLs. Before
// the run it opens the accounts (one hot account, or N chosen uniformly per debit) and funds them
// in every region it will debit, so every debit is decided locally from that region's own rights.
// Latencies are kept as samples (not bucketed) and sorted at the end: exact percentiles.
//
//   tally-load --url http://127.0.0.1:8081 --token-file build/cluster/token
//              --connections 64 --duration-s 20 --accounts 100000 [--json]
//
// An https:// URL is spoken over TLS, the server verified against --cacert (or the system's trust
// store); each new connection does a full handshake, so a run whose server closes connections
// measures handshakes too.
//
// Exit status: 0 ran (errors are counted and reported, not fatal), 2 usage, 3 set-up failed.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <utility>  // before Boost 1.74 asio.hpp, which uses std::exchange without it

#include "ctl/http_client.h"
#include "ctl/tls_client.h"
#include "version/version.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kExitUsage = 2;
constexpr int kExitSetup = 3;
// Funds per account per region: far more than any run can spend, far below the per-op cap 2^50.
constexpr std::int64_t kFundingPerRegion = std::int64_t{1} << 40;

struct Target {
  tally::ctl::Url url;
  tcp::endpoint endpoint;
  ssl::context* tls = nullptr;  // for an https URL: shared by every connection, read-only
};

// What one connection sends next. Implementations are used from one thread only.
class Source {
 public:
  virtual ~Source() = default;
  // Fills *request for connection `conn`; false when the connection has nothing more to do.
  virtual bool Next(std::size_t conn, std::string* request) = 0;
  // The answer to the request Next last gave `conn`; status 0 for a transport failure.
  virtual void Done(std::size_t conn, int status, const std::string& body,
                    Clock::duration latency) = 0;
};

// `durability`: empty (the server's default), or a Durability header value.
std::string BuildPost(const Target& t, const std::string& token, const std::string& path,
                      const std::string& key, const std::string& body,
                      const std::string& durability = "") {
  std::string r;
  r.reserve(256 + body.size());
  r += "POST ";
  r += t.url.prefix;
  r += path;
  r += " HTTP/1.1\r\nHost: ";
  r += t.url.host;
  r += ':';
  r += t.url.port;
  r += "\r\nAuthorization: Bearer ";
  r += token;
  if (!key.empty()) {
    r += "\r\nIdempotency-Key: ";
    r += key;
  }
  if (!durability.empty()) {
    r += "\r\nDurability: ";
    r += durability;
  }
  r += "\r\nContent-Type: application/json\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += "\r\n\r\n";
  r += body;
  return r;
}

// One keep-alive connection driving a Source, pipeline depth 1, over TCP or, for an https target,
// TLS (a new TLS stream per connection: one cannot be reused once closed). Reconnects after a
// failure.
class Conn {
 public:
  Conn(asio::io_context& io, const Target* target, std::size_t index, Source* source)
      : io_(io), socket_(io), target_(target), index_(index), source_(source) {}

  void Start() { Send(); }

 private:
  // Calls `f` with the stream requests go over.
  template <class F>
  void With(F&& f) {
    if (secure_) {
      f(*secure_);
    } else {
      f(socket_);
    }
  }
  tcp::socket& Socket() { return secure_ ? secure_->next_layer() : socket_; }

  void Send() {
    if (!source_->Next(index_, &request_)) {
      error_code ec;
      Socket().close(ec);
      return;
    }
    start_ = Clock::now();
    if (!connected_) {
      if (target_->tls) secure_.emplace(io_, *target_->tls);
      Socket().async_connect(target_->endpoint, [this](error_code ec) {
        if (ec) return Failed(ec.message());
        error_code ignored;
        Socket().set_option(tcp::no_delay(true), ignored);
        if (!secure_) {
          connected_ = true;
          return Write();
        }
        std::string error;
        if (!tally::ctl::SetTlsServerName(secure_->native_handle(), target_->url.host, &error))
          return Failed(error);
        secure_->async_handshake(ssl::stream_base::client, [this](error_code ec) {
          if (ec)
            return Failed("TLS handshake: " +
                          tally::ctl::DescribeTlsError(ec, secure_->native_handle()));
          connected_ = true;
          Write();
        });
      });
      return;
    }
    Write();
  }

  void Write() {
    With([this](auto& stream) {
      asio::async_write(
          stream, asio::buffer(request_), [this, &stream](error_code ec, std::size_t) {
            if (ec) return Failed(ec.message());
            parser_.emplace();
            parser_->body_limit(1 << 20);
            http::async_read(stream, buffer_, *parser_, [this](error_code ec, std::size_t) {
              if (ec) return Failed(ec.message());
              const auto latency = Clock::now() - start_;
              auto& res = parser_->get();
              const bool keep = res.keep_alive();
              source_->Done(index_, static_cast<int>(res.result_int()), res.body(), latency);
              if (!keep) Reset();
              Send();
            });
          });
    });
  }

  // A transport failure; `why` goes to the source as the body of status 0.
  void Failed(const std::string& why) {
    source_->Done(index_, 0, why, Clock::now() - start_);
    Reset();
    // Do not spin on a dead server: retry after a short pause.
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
    timer->async_wait([this, timer](error_code) { Send(); });
  }

  // Closes the connection without a TLS close_notify: answers are framed by Content-Length.
  void Reset() {
    error_code ec;
    Socket().close(ec);  // a closed socket opens again on the next async_connect
    secure_.reset();
    buffer_.clear();
    connected_ = false;
  }

  asio::io_context& io_;
  tcp::socket socket_;                              // http
  std::optional<ssl::stream<tcp::socket>> secure_;  // https, made for each connection
  const Target* target_;
  std::size_t index_;
  Source* source_;
  bool connected_ = false;
  std::string request_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  Clock::time_point start_;
};

// Runs `connections` connections (connection i talks to targets[i % n]) until `source` is done.
void RunConnections(const std::vector<Target>& targets, std::size_t connections, Source* source) {
  asio::io_context io(1);
  std::vector<std::unique_ptr<Conn>> conns;
  for (std::size_t i = 0; i < connections; ++i)
    conns.push_back(std::make_unique<Conn>(io, &targets[i % targets.size()], i, source));
  for (auto& c : conns) c->Start();
  io.run();
}

std::string AccountId(const std::string& prefix, std::size_t i) {
  return prefix + "-" + std::to_string(i);
}

// Set-up: a list of requests, each retried (same key) until it gets one of the accepted statuses.
class ListSource : public Source {
 public:
  struct Item {
    std::size_t target;
    std::string request;
  };
  ListSource(std::vector<std::vector<Item>> per_target, std::size_t targets,
             std::vector<int> accepted)
      : per_target_(std::move(per_target)),
        next_(targets, 0),
        targets_(targets),
        accepted_(std::move(accepted)) {}

  bool Next(std::size_t conn, std::string* request) override {
    const std::size_t t = conn % targets_;
    if (failed_) return false;
    if (auto it = retry_.find(conn); it != retry_.end()) {
      *request = it->second.request;
      return true;
    }
    if (next_[t] >= per_target_[t].size()) return false;
    current_[conn] = per_target_[t][next_[t]++];
    *request = current_[conn].request;
    return true;
  }

  void Done(std::size_t conn, int status, const std::string& body, Clock::duration) override {
    if (std::find(accepted_.begin(), accepted_.end(), status) != accepted_.end()) {
      retry_.erase(conn);
      ++done_;
      return;
    }
    // Transport failures and 5xx/429 are retried with the same request (and key); anything else
    // means the set-up itself is wrong.
    if (status == 0 || status >= 500 || status == 429) {
      if (++retries_ > 1000)
        fail("too many retries; last " +
             (status == 0 ? "a transport failure: " + body : "status " + std::to_string(status)));
      retry_[conn] = current_[conn];
      return;
    }
    fail("HTTP " + std::to_string(status) + " " + body);
  }

  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  std::uint64_t done() const { return done_; }

 private:
  void fail(std::string why) {
    if (!failed_) error_ = std::move(why);
    failed_ = true;
  }
  std::vector<std::vector<Item>> per_target_;
  std::vector<std::size_t> next_;
  std::size_t targets_;
  std::vector<int> accepted_;
  std::map<std::size_t, Item> current_, retry_;
  std::uint64_t done_ = 0, retries_ = 0;
  bool failed_ = false;
  std::string error_;
};

// The measured load: debits of `amount` on a random account until `end`.
class DebitSource : public Source {
 public:
  DebitSource(std::vector<Target> targets, std::string token, std::string prefix,
              std::size_t accounts, std::int64_t amount, std::string run_id, std::uint64_t seed,
              Clock::time_point measure_from, Clock::time_point end, std::size_t connections,
              std::string durability, std::size_t batch)
      : targets_(std::move(targets)),
        token_(std::move(token)),
        prefix_(std::move(prefix)),
        durability_(std::move(durability)),
        accounts_(accounts),
        batch_(batch),
        amount_(amount),
        body_("{\"amount\":" + std::to_string(amount) + "}"),
        run_id_(std::move(run_id)),
        rng_(seed),
        measure_from_(measure_from),
        end_(end),
        sent_at_(connections) {
    latencies_ns_.reserve(1 << 20);
  }

  bool Next(std::size_t conn, std::string* request) override {
    const auto now = Clock::now();
    if (now >= end_) return false;
    sent_at_[conn] = now;
    const Target& t = targets_[conn % targets_.size()];
    if (batch_ > 1) {  // POST /v1/batch of batch_ debits, each with its own key
      std::string body = "{\"ops\":[";
      for (std::size_t i = 0; i < batch_; ++i) {
        body += i ? ",{" : "{";
        body += "\"type\":\"debit\",\"account\":\"" + AccountId(prefix_, PickAccount()) +
                "\",\"idempotency_key\":\"" + run_id_ + "-" + std::to_string(conn) + "-" +
                std::to_string(seq_++) + "\",\"amount\":" + std::to_string(amount_) + "}";
      }
      body += "]}";
      *request = BuildPost(t, token_, "/v1/batch", "", body, durability_);
      return true;
    }
    const std::size_t account = PickAccount();
    *request = BuildPost(t, token_, "/v1/accounts/" + AccountId(prefix_, account) + "/debits",
                         run_id_ + "-" + std::to_string(conn) + "-" + std::to_string(seq_++), body_,
                         durability_);
    return true;
  }

  void Done(std::size_t conn, int status, const std::string& body,
            Clock::duration latency) override {
    if (sent_at_[conn] < measure_from_) return;  // warm-up
    if (status == 200 && batch_ > 1) {
      // Each op's own status: a debit refused inside a batch is an error like a refused request.
      std::size_t ok = 0;
      for (std::size_t at = body.find("\"status\":"); at != std::string::npos;
           at = body.find("\"status\":", at + 9)) {
        const int op_status = std::atoi(body.c_str() + at + 9);
        if (op_status == 200) {
          ++ok;
        } else if (++errors_[op_status] == 1) {
          first_error_[op_status] = body.substr(at, 300);
        }
      }
      ok_ += ok;
      latencies_ns_.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count()));
    } else if (status == 200) {
      ++ok_;
      latencies_ns_.push_back(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count()));
    } else {
      if (++errors_[status] == 1) first_error_[status] = body.substr(0, 300);
    }
  }

  const std::vector<Target>& targets() const { return targets_; }

  std::uint64_t ok_ = 0;
  std::map<int, std::uint64_t> errors_;  // by HTTP status; 0 = transport failure
  std::map<int, std::string>
      first_error_;  // the first answer of each failing status, to explain it
  std::vector<std::uint64_t> latencies_ns_;

 private:
  std::vector<Target> targets_;
  std::string token_, prefix_, durability_;
  std::size_t PickAccount() {
    return accounts_ == 1 ? 0 : std::uniform_int_distribution<std::size_t>(0, accounts_ - 1)(rng_);
  }

  std::size_t accounts_;
  std::size_t batch_;  // debits per request; 1: POST /v1/accounts/{id}/debits
  std::int64_t amount_;
  std::string body_, run_id_;
  std::mt19937_64 rng_;
  Clock::time_point measure_from_, end_;
  std::vector<Clock::time_point> sent_at_;
  std::uint64_t seq_ = 0;
};

double Percentile(const std::vector<std::uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  std::size_t i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return static_cast<double>(sorted[std::min(i, sorted.size() - 1)]) / 1e6;
}

std::string RandomRunId() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return std::string("L") + buf;
}

bool WaitVisible(const Target& t, const tally::ctl::ClientTls& tls, const std::string& token,
                 const std::string& account, std::chrono::seconds timeout) {
  tally::ctl::HttpClient client(t.url, std::chrono::seconds(5), tls);
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    tally::ctl::HttpResponse res;
    std::string error;
    if (client.Request("GET", "/v1/accounts/" + account, "", {{"Authorization", "Bearer " + token}},
                       &res, &error) &&
        res.status == 200)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tally-load: durable debits against tallyd, closed loop, keep-alive; throughput and latency"};
  app.set_version_flag("--version", tally::VersionLine("tally-load"));
  std::vector<std::string> urls;
  std::string token, token_file, cacert, prefix = "load";
  std::size_t connections = 64, accounts = 1, threads = 1, setup_connections = 64;
  double duration_s = 10, warmup_s = 1;
  std::int64_t amount = 1;
  std::uint64_t seed = 1;
  bool as_json = false, skip_setup = false;
  std::string durability;
  app.add_option("--url", urls,
                 "tallyd client URL(s), http:// or https://, comma-separated; connections spread "
                 "round-robin")
      ->required()
      ->delimiter(',');
  app.add_option("--token", token, "bearer token (env TALLY_TOKEN)")->envname("TALLY_TOKEN");
  app.add_option("--token-file", token_file, "read the token from this file");
  app.add_option("--cacert", cacert,
                 "PEM CA bundle to verify https:// URLs with (default: the system's trust store)")
      ->type_name("FILE")
      ->envname("TALLY_CACERT");
  app.add_option("--connections", connections,
                 "concurrent connections (one request in flight each)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}))
      ->capture_default_str();
  app.add_option("--threads", threads, "client I/O threads")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64}))
      ->capture_default_str();
  app.add_option("--duration-s", duration_s, "measured time")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--warmup-s", warmup_s, "load before measuring starts")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--accounts", accounts,
                 "1 = one hot account; N = N accounts chosen uniformly per debit")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))
      ->capture_default_str();
  app.add_option("--amount", amount, "minor units per debit")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--prefix", prefix, "account ids are PREFIX-0 .. PREFIX-(N-1)")
      ->capture_default_str();
  app.add_option("--seed", seed, "seed for the account choice")->capture_default_str();
  app.add_option("--setup-connections", setup_connections,
                 "connections used to open and fund accounts")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->capture_default_str();
  app.add_flag("--skip-setup", skip_setup, "accounts are already open and funded");
  app.add_option("--durability", durability,
                 "send Durability: local|replicated on every debit (default: the server's)")
      ->check(CLI::IsMember({"local", "replicated"}));
  std::size_t batch = 1;
  app.add_option("--batch", batch,
                 "debits per request: above 1, POST /v1/batch (latency is then a batch's)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}))
      ->capture_default_str();
  app.add_flag("--json", as_json, "print the result as one JSON object");
  CLI11_PARSE(app, argc, argv);

  if (!token_file.empty() && !tally::ctl::ReadTokenFile(token_file, &token)) {
    std::cerr << "tally-load: cannot read a token from " << token_file << "\n";
    return kExitUsage;
  }
  tally::ctl::TrimToken(&token);

  std::vector<Target> targets;
  for (const auto& u : urls) {
    Target t;
    std::string error;
    if (!tally::ctl::Url::Parse(u, &t.url, &error)) {
      std::cerr << "tally-load: " << error << "\n";
      return kExitUsage;
    }
    asio::io_context io;
    tcp::resolver resolver(io);
    error_code ec;
    auto results = resolver.resolve(t.url.host, t.url.port, ec);
    if (ec || results.empty()) {
      std::cerr << "tally-load: cannot resolve " << u << ": " << ec.message() << "\n";
      return kExitUsage;
    }
    t.endpoint = results.begin()->endpoint();
    targets.push_back(std::move(t));
  }

  // One TLS context for every https connection. A --cacert that cannot be loaded is a usage error
  // even when every URL is plain http: the command is wrong either way.
  const tally::ctl::ClientTls client_tls{cacert};
  std::unique_ptr<ssl::context> tls_context;
  const bool any_tls =
      std::any_of(targets.begin(), targets.end(), [](const Target& t) { return t.url.tls; });
  if (any_tls || !cacert.empty()) {
    std::string error;
    if (!tally::ctl::MakeClientTlsContext(client_tls, &tls_context, &error)) {
      std::cerr << "tally-load: " << error << "\n";
      return kExitUsage;
    }
  }
  for (auto& t : targets) {
    if (!t.url.tls) continue;
    t.tls = tls_context.get();
    // The load's connections retry transport failures and only count them, so a certificate or
    // protocol mistake would show as a number: check each https URL once, here, in words.
    tally::ctl::HttpClient probe(t.url, std::chrono::seconds(5), client_tls);
    tally::ctl::HttpResponse res;
    std::string error;
    if (!probe.Request("GET", "/healthz", "", {}, &res, &error)) {
      std::cerr << "tally-load: " << error << "\n";
      return kExitSetup;
    }
  }
  const std::string run_id = RandomRunId();

  if (!skip_setup) {
    const auto t0 = Clock::now();
    // 1. Open every account at the first URL (same config again answers 200: re-runs are fine).
    std::vector<std::vector<ListSource::Item>> opens(1);
    for (std::size_t i = 0; i < accounts; ++i) {
      json body = {{"id", AccountId(prefix, i)},
                   {"currency", "EUR"},
                   {"overdraft_limit", 0},
                   {"fee", {{"flat", 0}, {"bps", 0}}}};
      opens[0].push_back({0, BuildPost(targets[0], token, "/v1/accounts", "", body.dump())});
    }
    std::vector<Target> first = {targets[0]};
    ListSource open_source(std::move(opens), 1, {200, 201});
    RunConnections(first, std::min(setup_connections, accounts), &open_source);
    if (open_source.failed()) {
      std::cerr << "tally-load: opening accounts failed: " << open_source.error() << "\n";
      return kExitSetup;
    }
    // 2. Every region must know every account before it is funded there; ops of one origin arrive
    //    in order, so the last account being visible means all are.
    for (const auto& t : targets) {
      if (!WaitVisible(t, client_tls, token, AccountId(prefix, accounts - 1),
                       std::chrono::seconds(60))) {
        std::cerr << "tally-load: " << t.url.ToString() << " does not know "
                  << AccountId(prefix, accounts - 1) << " after 60 s\n";
        return kExitSetup;
      }
    }
    // 3. Fund every account in every region that will debit it, so debits are decided locally.
    std::vector<std::vector<ListSource::Item>> credits(targets.size());
    const std::string body = "{\"amount\":" + std::to_string(kFundingPerRegion) + "}";
    for (std::size_t t = 0; t < targets.size(); ++t)
      for (std::size_t i = 0; i < accounts; ++i)
        credits[t].push_back(
            {t, BuildPost(targets[t], token, "/v1/accounts/" + AccountId(prefix, i) + "/credits",
                          // A key per region: the same key in two regions is one
                          // request retried, and all but one would be voided.
                          run_id + "-fund-" + std::to_string(i) + "-" + std::to_string(t), body)});
    ListSource credit_source(std::move(credits), targets.size(), {200});
    RunConnections(targets, std::max(setup_connections, targets.size()), &credit_source);
    if (credit_source.failed()) {
      std::cerr << "tally-load: funding accounts failed: " << credit_source.error() << "\n";
      return kExitSetup;
    }
    if (!as_json)
      std::cerr << "tally-load: opened and funded " << accounts << " account(s) in "
                << std::chrono::duration<double>(Clock::now() - t0).count() << " s\n";
  }

  // The run: each thread drives its share of the connections with its own source.
  const auto start = Clock::now();
  const auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(duration_s));
  std::vector<std::unique_ptr<DebitSource>> sources;
  std::vector<std::thread> pool;
  for (std::size_t th = 0; th < threads; ++th) {
    const std::size_t mine = connections / threads + (th < connections % threads ? 1 : 0);
    if (mine == 0) continue;
    // Rotate the targets so every thread spreads its connections over every URL.
    std::vector<Target> rotated;
    for (std::size_t k = 0; k < targets.size(); ++k)
      rotated.push_back(targets[(k + th) % targets.size()]);
    sources.push_back(std::make_unique<DebitSource>(rotated, token, prefix, accounts, amount,
                                                    run_id + "t" + std::to_string(th), seed + th,
                                                    measure_from, end, mine, durability, batch));
    DebitSource* src = sources.back().get();
    pool.emplace_back([mine, src] { RunConnections(src->targets(), mine, src); });
  }
  for (auto& t : pool) t.join();
  const double measured_s =
      std::chrono::duration<double>(std::min(Clock::now(), end) - measure_from).count();

  std::uint64_t ok = 0;
  std::map<int, std::uint64_t> errors;
  std::map<int, std::string> first_error;
  std::vector<std::uint64_t> lat;
  for (auto& s : sources) {
    ok += s->ok_;
    for (auto [status, n] : s->errors_) errors[status] += n;
    for (const auto& [status, body] : s->first_error_) first_error.emplace(status, body);
    lat.insert(lat.end(), s->latencies_ns_.begin(), s->latencies_ns_.end());
  }
  std::sort(lat.begin(), lat.end());
  const double rate = measured_s > 0 ? static_cast<double>(ok) / measured_s : 0;
  json err = json::object();
  std::uint64_t error_total = 0;
  json samples = json::object();
  for (auto [status, n] : errors) {
    const std::string name = status == 0 ? "transport" : std::to_string(status);
    err[name] = n;
    error_total += n;
    // A transport failure's sample is the connection's error ("TLS handshake: ...").
    if (status != 0 || !first_error[status].empty()) samples[name] = first_error[status];
  }
  json out = {{"urls", urls},
              {"connections", connections},
              {"threads", threads},
              {"accounts", accounts},
              {"workload", accounts == 1 ? "hot" : "uniform"},
              {"batch", batch},
              {"duration_s", measured_s},
              {"warmup_s", warmup_s},
              {"debits_ok", ok},
              {"errors", err},
              {"error_samples", samples},
              {"throughput_per_s", rate},
              {"latency_ms",
               {{"p50", Percentile(lat, 0.50)},
                {"p90", Percentile(lat, 0.90)},
                {"p99", Percentile(lat, 0.99)},
                {"p999", Percentile(lat, 0.999)},
                {"max", lat.empty() ? 0.0 : static_cast<double>(lat.back()) / 1e6}}}};
  if (as_json) {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf(
      "tally-load: %zu connections, %zu thread(s), %s over %zu account(s), %zu URL(s), %.1f s "
      "measured\n",
      connections, threads, accounts == 1 ? "one hot account" : "uniform", accounts, urls.size(),
      measured_s);
  std::printf("  debits ok    %llu  (%.0f/s)\n", static_cast<unsigned long long>(ok), rate);
  std::printf("  errors       %llu  %s\n", static_cast<unsigned long long>(error_total),
              err.dump().c_str());
  for (const auto& [name, body] : samples.items())
    std::printf("    first %s: %s\n", name.c_str(), body.get<std::string>().c_str());
  std::printf("  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p999 %.3f  max %.3f\n",
              Percentile(lat, 0.50), Percentile(lat, 0.90), Percentile(lat, 0.99),
              Percentile(lat, 0.999), lat.empty() ? 0.0 : static_cast<double>(lat.back()) / 1e6);
  return 0;
}
