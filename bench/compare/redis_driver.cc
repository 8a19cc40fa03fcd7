// tally-compare-redis: drives durable debits against Redis the way tally-load drives tallyd, so
// the two can be compared point for point.
//
// Each debit is one EVALSHA of bench/compare/redis/debit.lua: in one atomic script, a replayed
// idempotency key returns its stored answer; otherwise the balance is checked, decremented, and
// the key stored with SET NX (expiring after a day, as a service would). Redis must run with
// `appendonly yes` and `appendfsync always`, so it answers only after the AOF write is fsynced;
// the driver checks both with CONFIG GET and refuses to measure anything less.
//
// Closed loop: C connections, one request in flight each, for S seconds; latency is measured from
// writing a request to reading its whole reply. Accounts are "acct:<i>", i uniform in [0, N)
// (N = 1 is one hot account), chosen by a per-connection generator seeded with the connection
// number, so runs repeat. Idempotency keys are unique per run tag, connection and sequence.
//
//   tally-compare-redis --port P --script FILE --seed-accounts N --balance B      (load + seed)
//   tally-compare-redis --port P --script FILE --accounts N --clients C --seconds S --tag T
//                       [--warmup-s W]
//
// With --warmup-s, the load runs W seconds before the S measured ones; debits sent during the
// warm-up are not counted (as tally-load does).
// The second form prints one JSON line:
//   {"clients":C,"seconds":…,"ok":…,"errors":…,"throughput":…,"p50_ms":…,"p99_ms":…,"first_error":"…"}
// Exit 0 ok, 1 Redis unreachable, not durable or a failed setup, 2 bad arguments.

// clang-format off
#include <utility>  // before Boost 1.74 asio.hpp, which uses std::exchange without it
// clang-format on
#include <algorithm>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr int kMaxClients = 4096;
constexpr std::int64_t kMaxAccounts = 100000000;
constexpr double kMaxSeconds = 3600;
constexpr int kSeedChunk = 1000;  // accounts per MSET while seeding
constexpr std::size_t kMaxReplyBytes = 1 << 20;
constexpr int kMinAmount = 1, kMaxAmount = 100;

std::string Command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// One parsed RESP reply; arrays are flattened into `items` (enough for CONFIG GET).
struct Reply {
  char type = 0;  // '+', '-', ':', '$', '*'
  std::string text;
  std::vector<std::string> items;
};

// Parses one reply at the start of `buf`. Returns the bytes it spans, 0 if incomplete, or
// std::nullopt if the bytes are not RESP.
std::optional<std::size_t> ParseReply(std::string_view buf, Reply* out) {
  auto line_end = buf.find("\r\n");
  if (line_end == std::string_view::npos) return 0;
  if (buf.empty()) return 0;
  const char type = buf[0];
  const std::string_view line = buf.substr(1, line_end - 1);
  out->type = type;
  switch (type) {
    case '+':
    case '-':
    case ':':
      out->text = std::string(line);
      return line_end + 2;
    case '$': {
      const long n = std::strtol(std::string(line).c_str(), nullptr, 10);
      if (n < 0) {
        out->text.clear();
        return line_end + 2;
      }
      const std::size_t total = line_end + 2 + static_cast<std::size_t>(n) + 2;
      if (buf.size() < total) return 0;
      out->text = std::string(buf.substr(line_end + 2, static_cast<std::size_t>(n)));
      return total;
    }
    case '*': {
      const long n = std::strtol(std::string(line).c_str(), nullptr, 10);
      std::size_t pos = line_end + 2;
      out->items.clear();
      for (long i = 0; i < n; ++i) {
        Reply item;
        auto used = ParseReply(buf.substr(pos), &item);
        if (!used) return std::nullopt;
        if (*used == 0) return 0;
        out->items.push_back(item.text);
        pos += *used;
      }
      return pos;
    }
    default:
      return std::nullopt;
  }
}

// Blocking request/reply, for setup only.
bool Call(tcp::socket& s, const std::vector<std::string>& args, Reply* reply, std::string* error) {
  error_code ec;
  asio::write(s, asio::buffer(Command(args)), ec);
  std::string buf;
  char chunk[4096];
  while (!ec) {
    auto used = ParseReply(buf, reply);
    if (!used) {
      *error = "not a RESP reply from Redis";
      return false;
    }
    if (*used > 0) {
      if (reply->type == '-') {
        *error = args[0] + ": " + reply->text;
        return false;
      }
      return true;
    }
    if (buf.size() > kMaxReplyBytes) break;
    const std::size_t n = s.read_some(asio::buffer(chunk), ec);
    buf.append(chunk, n);
  }
  *error = ec ? "reading from Redis: " + ec.message() : "reply too large";
  return false;
}

struct Args {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string script_file;
  std::int64_t seed_accounts = 0;
  std::int64_t balance = 1000000000000000;  // 10^15: never runs out during a benchmark
  std::int64_t accounts = 1;
  int clients = 1;
  double seconds = 3;
  double warmup_s = 0;
  std::string tag = "run";
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, const Args& args, const std::string& sha, int index,
         Clock::time_point measure_from, Clock::time_point deadline)
      : socket_(io),
        args_(args),
        sha_(sha),
        index_(index),
        measure_from_(measure_from),
        deadline_(deadline),
        rng_(static_cast<std::uint64_t>(index) + 1) {}

  void Start(const tcp::endpoint& ep) {
    error_code ec;
    socket_.connect(ep, ec);
    if (ec) {
      Fail("connect: " + ec.message());
      return;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    Send();
  }

  std::vector<float> latencies_ms;
  std::uint64_t errors = 0;
  std::string first_error;

 private:
  void Fail(const std::string& why) {
    ++errors;
    if (first_error.empty()) first_error = why;
    error_code ec;
    socket_.close(ec);
  }

  void Send() {
    if (Clock::now() >= deadline_) {
      error_code ec;
      socket_.close(ec);
      return;
    }
    std::uniform_int_distribution<std::int64_t> account(0, args_.accounts - 1);
    std::uniform_int_distribution<int> amount(kMinAmount, kMaxAmount);
    request_ =
        Command({"EVALSHA", sha_, "2", "acct:" + std::to_string(account(rng_)),
                 "idem:" + args_.tag + ":" + std::to_string(index_) + ":" + std::to_string(++seq_),
                 std::to_string(amount(rng_))});
    sent_ = Clock::now();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(request_), [self](error_code ec, std::size_t) {
      if (ec) return self->Fail("write: " + ec.message());
      self->Read();
    });
  }

  void Read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_), [self](error_code ec, std::size_t n) {
      if (ec) return self->Fail("read: " + ec.message());
      self->in_.append(self->chunk_.data(), n);
      Reply reply;
      auto used = ParseReply(self->in_, &reply);
      if (!used) return self->Fail("not a RESP reply");
      if (*used == 0) {
        if (self->in_.size() > kMaxReplyBytes) return self->Fail("reply too large");
        return self->Read();
      }
      self->in_.erase(0, *used);
      const auto now = Clock::now();
      if (self->sent_ < self->measure_from_) {
        // Warm-up: not counted, but an error still says the set-up is wrong.
        if (reply.type != ':' && self->first_error.empty()) self->first_error = reply.text;
      } else if (reply.type == ':') {
        self->latencies_ms.push_back(
            std::chrono::duration<float, std::milli>(now - self->sent_).count());
      } else {
        ++self->errors;
        if (self->first_error.empty()) self->first_error = reply.text;
      }
      self->Send();
    });
  }

  tcp::socket socket_;
  const Args& args_;
  const std::string& sha_;
  const int index_;
  const Clock::time_point measure_from_;
  const Clock::time_point deadline_;
  std::mt19937_64 rng_;
  std::uint64_t seq_ = 0;
  std::string request_;
  std::string in_;
  std::array<char, 4096> chunk_;
  Clock::time_point sent_;
};

int Usage(const std::string& why) {
  std::fprintf(
      stderr,
      "tally-compare-redis: %s\n"
      "usage: tally-compare-redis --port P --script FILE --seed-accounts N [--balance B]\n"
      "       tally-compare-redis --port P --script FILE --accounts N --clients C --seconds S "
      "[--tag T] [--warmup-s W]\n",
      why.c_str());
  return 2;
}

bool ParseInt(const std::string& s, std::int64_t lo, std::int64_t hi, std::int64_t* out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool ValidTag(const std::string& t) {
  if (t.empty() || t.size() > 64) return false;
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  bool run = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage("missing value after " + a);
    const std::string v = argv[++i];
    std::int64_t n = 0;
    if (a == "--host") {
      args.host = v;
    } else if (a == "--port") {
      if (!ParseInt(v, 1, 65535, &n)) return Usage("--port must be in 1..65535");
      args.port = static_cast<std::uint16_t>(n);
    } else if (a == "--script") {
      args.script_file = v;
    } else if (a == "--seed-accounts") {
      if (!ParseInt(v, 1, kMaxAccounts, &args.seed_accounts))
        return Usage("--seed-accounts must be in 1..10^8");
    } else if (a == "--balance") {
      if (!ParseInt(v, 0, std::int64_t{1} << 62, &args.balance))
        return Usage("--balance must be in 0..2^62");
    } else if (a == "--accounts") {
      if (!ParseInt(v, 1, kMaxAccounts, &args.accounts))
        return Usage("--accounts must be in 1..10^8");
      run = true;
    } else if (a == "--clients") {
      if (!ParseInt(v, 1, kMaxClients, &n)) return Usage("--clients must be in 1..4096");
      args.clients = static_cast<int>(n);
      run = true;
    } else if (a == "--seconds") {
      char* end = nullptr;
      args.seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(args.seconds > 0) || args.seconds > kMaxSeconds)
        return Usage("--seconds must be a number in (0, 3600]");
      run = true;
    } else if (a == "--warmup-s") {
      char* end = nullptr;
      args.warmup_s = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(args.warmup_s >= 0) || args.warmup_s > kMaxSeconds)
        return Usage("--warmup-s must be a number in [0, 3600]");
    } else if (a == "--tag") {
      if (!ValidTag(v)) return Usage("--tag must be 1..64 of [A-Za-z0-9._-]");
      args.tag = v;
    } else {
      return Usage("unknown option " + a);
    }
  }
  if (args.port == 0) return Usage("--port is required");
  if (args.script_file.empty()) return Usage("--script is required");
  if (run == (args.seed_accounts > 0))
    return Usage("give either --seed-accounts or a run (--accounts, --clients, --seconds)");
  std::ifstream in(args.script_file);
  if (!in) return Usage("cannot read " + args.script_file);
  std::stringstream script;
  script << in.rdbuf();

  asio::io_context io;
  error_code ec;
  const auto address = asio::ip::make_address(args.host, ec);
  if (ec) return Usage("--host must be an IP literal");
  const tcp::endpoint ep(address, args.port);
  tcp::socket setup(io);
  setup.connect(ep, ec);
  if (ec) {
    std::fprintf(stderr, "tally-compare-redis: cannot connect to %s:%u: %s\n", args.host.c_str(),
                 args.port, ec.message().c_str());
    return 1;
  }
  Reply reply;
  std::string error;
  // Durability first: a fast number from a Redis that does not fsync every write means nothing.
  for (auto [key, want] : {std::pair{"appendonly", "yes"}, std::pair{"appendfsync", "always"}}) {
    if (!Call(setup, {"CONFIG", "GET", key}, &reply, &error)) {
      std::fprintf(stderr, "tally-compare-redis: %s\n", error.c_str());
      return 1;
    }
    if (reply.items.size() != 2 || reply.items[1] != want) {
      std::fprintf(stderr,
                   "tally-compare-redis: Redis runs with %s %s; durable debits need %s %s\n", key,
                   reply.items.size() == 2 ? reply.items[1].c_str() : "?", key, want);
      return 1;
    }
  }
  if (!Call(setup, {"SCRIPT", "LOAD", script.str()}, &reply, &error)) {
    std::fprintf(stderr, "tally-compare-redis: %s\n", error.c_str());
    return 1;
  }
  const std::string sha = reply.text;

  if (args.seed_accounts > 0) {
    for (std::int64_t first = 0; first < args.seed_accounts; first += kSeedChunk) {
      std::vector<std::string> cmd = {"MSET"};
      for (std::int64_t i = first; i < std::min(args.seed_accounts, first + kSeedChunk); ++i) {
        cmd.push_back("acct:" + std::to_string(i));
        cmd.push_back(std::to_string(args.balance));
      }
      if (!Call(setup, cmd, &reply, &error)) {
        std::fprintf(stderr, "tally-compare-redis: seeding: %s\n", error.c_str());
        return 1;
      }
    }
    std::printf("seeded %lld accounts with %lld each; script %s\n",
                static_cast<long long>(args.seed_accounts), static_cast<long long>(args.balance),
                sha.c_str());
    return 0;
  }
  setup.close(ec);

  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(args.warmup_s));
  const auto deadline = measure_from + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(args.seconds));
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < args.clients; ++i) {
    clients.push_back(std::make_shared<Client>(io, args, sha, i, measure_from, deadline));
    clients.back()->Start(ep);
  }
  io.run();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - measure_from).count();

  std::vector<float> all;
  std::uint64_t errors = 0;
  std::string first_error;
  for (const auto& c : clients) {
    all.insert(all.end(), c->latencies_ms.begin(), c->latencies_ms.end());
    errors += c->errors;
    if (first_error.empty()) first_error = c->first_error;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) -> double {
    if (all.empty()) return 0;
    return all[std::min(all.size() - 1,
                        static_cast<std::size_t>(q * static_cast<double>(all.size() - 1) + 0.5))];
  };
  std::string escaped;
  for (char c : first_error) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) escaped.push_back(c);
  }
  std::printf(
      "{\"clients\":%d,\"seconds\":%.3f,\"ok\":%zu,\"errors\":%llu,\"throughput\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"first_error\":\"%s\"}\n",
      args.clients, elapsed_s, all.size(), static_cast<unsigned long long>(errors),
      static_cast<double>(all.size()) / elapsed_s, pct(0.50), pct(0.99), escaped.c_str());
  return 0;
}
