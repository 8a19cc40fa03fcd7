#include "node/stream_hub.h"

#include <set>
#include <string>
#include <string_view>

namespace tally::node {

void StreamHub::Subscribe(const std::shared_ptr<WsSession>& ws) {
  streams_[ws->id()] = ws;
  if (!ws->open()) return;  // not authenticated yet: it subscribes again when it is
  for (const std::string& id : ws->accounts()) {
    AccountView view;
    if (!replica_->GetAccount(id, &view).ok()) continue;
    ws->Send(AccountMessageJson(view, *regions_));
  }
}

void StreamHub::Unsubscribe(std::uint64_t id) {
  asio::post(*io_, [this, id] { streams_.erase(id); });
}

void StreamHub::Notify(const PersistBatch& batch) {
  if (streams_.empty()) return;
  std::set<std::string_view> changed;
  for (const Op& op : batch.ops) {
    changed.insert(op.account);
    if (!op.to_account.empty()) changed.insert(op.to_account);  // a transfer's payee
  }
  for (const Fold& f : batch.folds) {
    for (const AccountCheckpoint& c : f.checkpoints) changed.insert(c.config.id);
  }
  if (changed.empty()) return;
  std::map<std::string_view, std::string> rendered;  // each changed account rendered once
  for (auto& [id, ws] : streams_) {
    if (!ws->open()) continue;
    for (const std::string& account : ws->accounts()) {
      if (!changed.count(account)) continue;
      auto it = rendered.find(account);
      if (it == rendered.end()) {
        AccountView view;
        std::string msg;
        if (replica_->GetAccount(account, &view).ok()) msg = AccountMessageJson(view, *regions_);
        it = rendered.emplace(account, std::move(msg)).first;
      }
      if (!it->second.empty()) ws->Send(it->second);
    }
  }
}

std::size_t StreamHub::awaiting_auth() const {
  std::size_t n = 0;
  for (const auto& [id, ws] : streams_) n += ws->awaiting_auth() ? 1 : 0;
  return n;
}

void StreamHub::CloseAll() {
  for (auto& [id, ws] : streams_) ws->Close();
}

std::size_t StreamHub::CloseUnless(const std::function<bool(const WsSession&)>& allowed) {
  std::size_t closed = 0;
  for (auto& [id, ws] : streams_) {  // Close unsubscribes through a posted handler: no erase here
    if (ws->open() && !allowed(*ws)) {
      ws->Close();
      ++closed;
    }
  }
  return closed;
}

}  // namespace tally::node
