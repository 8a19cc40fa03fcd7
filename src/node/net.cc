#include "node/net.h"

#include <fmt/format.h>

namespace tally::node {

std::string RemoteOf(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

Status ListenOn(tcp::acceptor* acceptor, const Endpoint& at, std::string_view what) {
  beast::error_code ec;
  auto address = asio::ip::make_address(at.host, ec);
  if (ec)
    return Status::InvalidArgument(fmt::format("{} {}: {}", what, at.ToString(), ec.message()));
  tcp::endpoint endpoint(address, at.port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError(fmt::format("{} {}: {}", what, at.ToString(), ec.message()));
  return Status::OK();
}

}  // namespace tally::node
