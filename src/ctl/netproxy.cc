// clang-format off
#include <utility>  // before Boost 1.74 asio.hpp, which uses std::exchange without it
// clang-format on
#include "ctl/netproxy.h"

#include <boost/asio.hpp>
#include <deque>
#include <future>
#include <map>
#include <thread>

namespace tally::ctl {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;

struct Link;

// One accepted connection and its connection to the target, with one pump per direction.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::io_context& io, tcp::socket client, Link* link)
      : client_(std::move(client)), server_(io), link_(link), up_(io), down_(io) {}

  void Start(const tcp::endpoint& target);
  void Close();
  bool closed() const { return closed_; }

 private:
  struct Chunk {
    Clock::time_point due;
    std::string data;
  };
  struct Pump {
    explicit Pump(asio::io_context& io) : timer(io) {}
    std::deque<Chunk> queue;
    std::size_t queued_bytes = 0;
    bool reading = false;
    bool writing = false;
    bool eof = false;       // the source closed its sending side
    bool finished = false;  // eof seen and everything forwarded
    std::array<char, kReadChunkBytes> buf;
    asio::steady_timer timer;
  };

  void Read(tcp::socket& from, tcp::socket& to, Pump& p);
  void Write(tcp::socket& from, tcp::socket& to, Pump& p);
  void DoWrite(tcp::socket& from, tcp::socket& to, Pump& p);

  tcp::socket client_;
  tcp::socket server_;
  Link* link_;
  Pump up_;    // client → server
  Pump down_;  // server → client
  bool closed_ = false;
};

struct Link {
  std::string name;
  bool cut = false;
  Clock::duration delay{0};
  std::uint64_t accepted = 0;
  std::uint64_t refused_while_cut = 0;
  std::uint64_t bytes_forwarded = 0;
  std::vector<std::weak_ptr<Session>> sessions;
  std::vector<ProxyRouteInfo> routes;

  void Prune() {
    std::erase_if(sessions, [](const std::weak_ptr<Session>& w) {
      auto s = w.lock();
      return !s || s->closed();
    });
  }
};

void Session::Start(const tcp::endpoint& target) {
  auto self = shared_from_this();
  server_.async_connect(target, [self](error_code ec) {
    if (ec || self->closed_) {
      self->Close();
      return;
    }
    error_code ignored;
    self->client_.set_option(tcp::no_delay(true), ignored);
    self->server_.set_option(tcp::no_delay(true), ignored);
    self->Read(self->client_, self->server_, self->up_);
    self->Read(self->server_, self->client_, self->down_);
  });
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  client_.close(ec);
  server_.close(ec);
  up_.timer.cancel();
  down_.timer.cancel();
}

void Session::Read(tcp::socket& from, tcp::socket& to, Pump& p) {
  if (closed_ || p.reading || p.eof || p.queued_bytes >= kProxyMaxQueuedBytes) return;
  p.reading = true;
  auto self = shared_from_this();
  from.async_read_some(asio::buffer(p.buf), [self, &from, &to, &p](error_code ec, std::size_t n) {
    p.reading = false;
    if (self->closed_) return;
    if (ec) {
      if (ec != asio::error::eof) {
        self->Close();
        return;
      }
      p.eof = true;
    } else {
      p.queue.push_back({Clock::now() + self->link_->delay, std::string(p.buf.data(), n)});
      p.queued_bytes += n;
    }
    self->Write(from, to, p);
    self->Read(from, to, p);
  });
}

void Session::Write(tcp::socket& from, tcp::socket& to, Pump& p) {
  if (closed_ || p.writing) return;
  if (p.queue.empty()) {
    if (p.eof && !p.finished) {
      p.finished = true;
      error_code ec;
      to.shutdown(tcp::socket::shutdown_send, ec);
      if (up_.finished && down_.finished) Close();
    }
    return;
  }
  p.writing = true;
  auto self = shared_from_this();
  if (p.queue.front().due > Clock::now()) {
    p.timer.expires_at(p.queue.front().due);
    p.timer.async_wait([self, &from, &to, &p](error_code ec) {
      if (self->closed_) return;
      self->DoWrite(from, to, p);
    });
  } else {
    DoWrite(from, to, p);
  }
}

void Session::DoWrite(tcp::socket& from, tcp::socket& to, Pump& p) {
  auto self = shared_from_this();
  asio::async_write(to, asio::buffer(p.queue.front().data),
                    [self, &from, &to, &p](error_code ec, std::size_t n) {
                      p.writing = false;
                      // Counted even if the link was cut meanwhile: the bytes did reach the peer.
                      self->link_->bytes_forwarded += n;
                      if (self->closed_) return;
                      if (ec) {
                        self->Close();
                        return;
                      }
                      p.queued_bytes -= p.queue.front().data.size();
                      p.queue.pop_front();
                      self->Write(from, to, p);
                      self->Read(from, to, p);
                    });
}

}  // namespace

struct NetProxy::Impl {
  struct Route {
    Link* link;
    tcp::acceptor acceptor;
    tcp::endpoint target;
  };

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::map<std::string, std::unique_ptr<Link>> links;
  std::vector<std::unique_ptr<Route>> routes;
  std::thread thread;

  // Runs `fn` on the I/O thread and waits for its result.
  template <class Fn>
  auto Call(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    asio::post(io, [&task] { task(); });
    return result.get();
  }

  void Accept(Route* r) {
    r->acceptor.async_accept([this, r](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        Link* link = r->link;
        if (link->cut) {
          ++link->refused_while_cut;
          error_code ignored;
          socket.close(ignored);
        } else {
          ++link->accepted;
          link->Prune();
          auto s = std::make_shared<Session>(io, std::move(socket), link);
          link->sessions.push_back(s);
          s->Start(r->target);
        }
      }
      Accept(r);
    });
  }
};

NetProxy::NetProxy() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

NetProxy::~NetProxy() {
  impl_->Call([this] {
    for (auto& r : impl_->routes) {
      error_code ec;
      r->acceptor.close(ec);
    }
    for (auto& [name, link] : impl_->links) {
      for (auto& w : link->sessions)
        if (auto s = w.lock()) s->Close();
    }
    return 0;
  });
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

bool NetProxy::AddRoute(const std::string& link_name, std::uint16_t listen_port,
                        const std::string& target_host, std::uint16_t target_port,
                        std::uint16_t* bound_port, std::string* error) {
  return impl_->Call([&]() -> bool {
    error_code ec;
    tcp::resolver resolver(impl_->io);
    auto results = resolver.resolve(target_host, std::to_string(target_port), ec);
    if (ec || results.empty()) {
      *error = "cannot resolve proxy target " + target_host + ":" + std::to_string(target_port) +
               ": " + ec.message();
      return false;
    }
    tcp::acceptor acceptor(impl_->io);
    tcp::endpoint listen(asio::ip::make_address("127.0.0.1"), listen_port);
    acceptor.open(listen.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(listen, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      *error =
          "proxy cannot listen on 127.0.0.1:" + std::to_string(listen_port) + ": " + ec.message();
      return false;
    }
    auto& link = impl_->links[link_name];
    if (!link) {
      link = std::make_unique<Link>();
      link->name = link_name;
    }
    const std::uint16_t port = acceptor.local_endpoint().port();
    if (bound_port) *bound_port = port;
    link->routes.push_back({port, target_host + ":" + std::to_string(target_port)});
    impl_->routes.push_back(std::make_unique<Impl::Route>(
        Impl::Route{link.get(), std::move(acceptor), results.begin()->endpoint()}));
    impl_->Accept(impl_->routes.back().get());
    return true;
  });
}

bool NetProxy::Cut(const std::string& link_name) {
  return impl_->Call([&]() -> bool {
    auto it = impl_->links.find(link_name);
    if (it == impl_->links.end()) return false;
    it->second->cut = true;
    for (auto& w : it->second->sessions)
      if (auto s = w.lock()) s->Close();
    it->second->sessions.clear();
    return true;
  });
}

bool NetProxy::Heal(const std::string& link_name) {
  return impl_->Call([&]() -> bool {
    auto it = impl_->links.find(link_name);
    if (it == impl_->links.end()) return false;
    it->second->cut = false;
    return true;
  });
}

bool NetProxy::SetDelay(const std::string& link_name, std::chrono::milliseconds one_way) {
  return impl_->Call([&]() -> bool {
    auto it = impl_->links.find(link_name);
    if (it == impl_->links.end()) return false;
    it->second->delay = one_way;
    return true;
  });
}

std::vector<ProxyLinkInfo> NetProxy::Links() const {
  return impl_->Call([this] {
    std::vector<ProxyLinkInfo> out;
    for (auto& [name, link] : impl_->links) {
      link->Prune();
      ProxyLinkInfo info;
      info.name = name;
      info.cut = link->cut;
      info.delay_ms = std::chrono::duration_cast<std::chrono::milliseconds>(link->delay).count();
      info.open_connections = link->sessions.size();
      info.accepted = link->accepted;
      info.refused_while_cut = link->refused_while_cut;
      info.bytes_forwarded = link->bytes_forwarded;
      info.routes = link->routes;
      out.push_back(std::move(info));
    }
    return out;
  });
}

}  // namespace tally::ctl
