#include "node/stream_hub.h"

#include <algorithm>
#include <string_view>

#include "node/stream_events.h"
#include "node/stream_messages.h"

namespace tally::node {

void StreamHub::Subscribe(const std::shared_ptr<WsSession>& ws) {
  Follower& f = followers_[ws->id()];
  f.ws = ws;
  if (!ws->open()) return;  // not authenticated yet: it subscribes again when it is
  for (const std::string& a : ws->accounts()) {
    if (f.accounts.insert(a).second) ++followed_[a];
  }
  f.delivered = ws->after().value_or(CanonicalKey{});
  const std::uint64_t barrier = from_.gate->Barrier();
  f.opens_at = barrier;
  if (barrier == 0) {  // nothing unsynced: the state now is durable
    Open(&f);
    SendOpening(&f);
  } else if (barrier <= prepared_through_) {  // in flight: the state now is exactly through it
    Open(&f);
  } else {  // the open batch: its state is known when it closes
    f.render_at_prepare = true;
  }
}

void StreamHub::Unsubscribe(std::uint64_t id) {
  asio::post(*io_, [this, id] { Forget(id); });
}

void StreamHub::Forget(std::uint64_t id) {
  auto it = followers_.find(id);
  if (it == followers_.end()) return;
  for (const std::string& a : it->second.accounts) {
    auto c = followed_.find(a);
    if (c != followed_.end() && --c->second == 0) followed_.erase(c);
  }
  followers_.erase(it);
}

void StreamHub::Open(Follower* f) {
  const Hlc saved = from_.replica->saved_frontier();
  const CanonicalKey through = FrontierKey(saved);
  f->opening.clear();
  if (const std::optional<CanonicalKey> after = f->ws->after(); after && from_.store) {
    std::vector<StatementLine> lines;
    bool more = false;
    if (Status s = MissedLines(from_, f->accounts, *after, through, kMaxReplayLines, &lines, &more);
        !s.ok() || more) {
      if (s.ok())
        s = Status::ResourceExhausted(
            "more than " + std::to_string(kMaxReplayLines) +
            " final lines since the cursor: read them with GET /v1/accounts/{id}/history"
            "?order=asc&cursor=<cursor> and open the stream again after the last one");
      f->opening.push_back(StreamErrorJson({}, s));
      f->close_after_opening = true;
      return;
    }
    // Chunks end between two keys, so a chunk's cursor (its last key) never splits a transfer's
    // two lines; the last chunk's is the frontier's.
    std::vector<std::string> rendered;
    rendered.reserve(lines.size());
    for (const StatementLine& l : lines) rendered.push_back(LineEventJson(l, *from_.regions));
    std::size_t begin = 0;
    while (begin < lines.size()) {
      std::size_t end = std::min(begin + kReplayLinesPerMessage, lines.size());
      while (end < lines.size() && end > begin + 1 && lines[end].key == lines[end - 1].key) --end;
      StreamEvent e{.final = true, .replay = true, .cursor = lines[end - 1].key, .frontier = saved};
      if (end == lines.size()) e.cursor = std::max(through, *after);
      for (std::size_t i = begin; i < end; ++i) e.items.push_back(&rendered[i]);
      f->opening.push_back(StreamEventJson(e));
      begin = end;
    }
  }
  f->delivered = std::max(f->delivered, through);
  for (const std::string& id : f->ws->accounts()) {  // in the order the client listed them
    AccountView view;
    if (from_.replica->GetAccount(id, &view).ok())
      f->opening.push_back(AccountSnapshotJson(view, *from_.regions, f->delivered));
  }
}

void StreamHub::SendOpening(Follower* f) {
  f->opens_at = 0;
  std::vector<std::string> opening = std::move(f->opening);
  f->opening.clear();
  for (std::string& m : opening) f->ws->Send(std::move(m));
  if (f->close_after_opening)
    f->ws->Close({websocket::close_code::policy_error, "too far behind to replay"});
}

void StreamHub::Prepared(std::uint64_t number, const PersistBatch& batch) {
  prepared_through_ = number;
  for (auto& [id, f] : followers_) {
    if (f.render_at_prepare && f.opens_at == number) {
      f.render_at_prepare = false;
      Open(&f);
    }
  }
  if (followed_.empty()) return;
  Rendered r;
  r.number = number;
  r.saved_frontier = from_.replica->saved_frontier();
  auto change = [&](std::string_view account) -> AccountChange* {
    auto it = followed_.find(account);
    if (it == followed_.end()) return nullptr;
    return &r.accounts[it->first];
  };
  for (const Op& op : batch.ops) {
    std::string rendered;
    auto add = [&](std::string_view account) {
      AccountChange* c = change(account);
      if (!c || (!c->ops.empty() && c->ops.back().first == op.canonical())) return;
      if (rendered.empty()) rendered = OpEventJson(op, *from_.regions);
      c->ops.emplace_back(op.canonical(), rendered);
    };
    add(op.account);
    if (!op.to_account.empty()) add(op.to_account);  // a transfer's payee
    for (const std::string& p : op.payers) add(p);   // a budget debit's payers
  }
  for (const Fold& fold : batch.folds) {
    r.fold_frontier = fold.frontier;
    for (const AccountCheckpoint& cp : fold.checkpoints) {
      if (AccountChange* c = change(cp.config.id)) c->folded = true;
    }
    for (const StatementLine& l : fold.lines) {
      if (AccountChange* c = change(l.account)) {
        c->folded = true;
        c->lines.emplace_back(l.key, LineEventJson(l, *from_.regions));
      }
    }
  }
  if (batch.replaces_store) {  // installed from a peer's snapshot: every account may have moved
    for (const auto& [account, n] : followed_) r.accounts[account].folded = true;
  }
  for (auto it = r.accounts.begin(); it != r.accounts.end();) {
    AccountView view;
    if (from_.replica->GetAccount(it->first, &view).ok()) {
      it->second.state = AccountStateJson(view);
      ++it;
    } else {
      it = r.accounts.erase(it);  // not open (yet): nothing to show
    }
  }
  if (!r.accounts.empty()) rendered_.push_back(std::move(r));
}

void StreamHub::Synced(std::uint64_t number) {
  const Rendered* r =
      !rendered_.empty() && rendered_.front().number == number ? &rendered_.front() : nullptr;
  for (auto& [id, f] : followers_) {
    if (!f.ws->open()) continue;
    if (f.opens_at > number) continue;  // its opening covers this batch
    if (f.opens_at == number) {
      SendOpening(&f);
      continue;
    }
    if (r) SendEvents(&f, *r);
  }
  if (r) rendered_.pop_front();
}

void StreamHub::SendEvents(Follower* f, const Rendered& r) {
  StreamEvent fin{.final = true, .frontier = r.fold_frontier};
  StreamEvent ops{.final = false};
  std::vector<std::pair<std::pair<CanonicalKey, std::string_view>, const std::string*>> lines;
  std::vector<std::pair<CanonicalKey, const std::string*>> applied;
  for (const auto& [account, c] : r.accounts) {
    if (!f->accounts.count(account)) continue;
    if (c.folded) fin.accounts.push_back(&c.state);
    if (!c.ops.empty()) ops.accounts.push_back(&c.state);
    for (const auto& [key, text] : c.lines) {
      if (f->delivered < key) lines.push_back({{key, account}, &text});
    }
    for (const auto& [key, text] : c.ops) applied.emplace_back(key, &text);
  }
  if (!fin.accounts.empty()) {
    std::sort(lines.begin(), lines.end());
    for (const auto& l : lines) fin.items.push_back(l.second);
    if (!r.fold_frontier.is_zero())
      f->delivered = std::max(f->delivered, FrontierKey(r.fold_frontier));
    fin.cursor = f->delivered;
    f->ws->Send(StreamEventJson(fin));
  }
  if (!ops.accounts.empty()) {
    // An op of two followed accounts (a transfer) is one item; canonical order within the batch.
    std::sort(applied.begin(), applied.end());
    applied.erase(std::unique(applied.begin(), applied.end(),
                              [](const auto& a, const auto& b) { return a.first == b.first; }),
                  applied.end());
    for (const auto& a : applied) ops.items.push_back(a.second);
    f->delivered = std::max(f->delivered, FrontierKey(r.saved_frontier));
    ops.cursor = f->delivered;
    f->ws->Send(StreamEventJson(ops));
  }
}

std::size_t StreamHub::awaiting_auth() const {
  std::size_t n = 0;
  for (const auto& [id, f] : followers_) n += f.ws->awaiting_auth() ? 1 : 0;
  return n;
}

void StreamHub::CloseAll() {
  for (auto& [id, f] : followers_) f.ws->Close();
}

std::size_t StreamHub::CloseUnless(const std::function<bool(const WsSession&)>& allowed) {
  std::size_t closed = 0;
  for (auto& [id, f] : followers_) {  // Close unsubscribes through a posted handler: no erase here
    if (f.ws->open() && !allowed(*f.ws)) {
      f.ws->Close();
      ++closed;
    }
  }
  return closed;
}

}  // namespace tally::node
