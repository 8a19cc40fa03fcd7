// StreamHub: the open GET /v1/stream subscriptions, and what each is sent (docs/operations.md,
// "GET /v1/stream"): on opening, the final lines it missed since its `after` cursor (from the
// history store) and its accounts' state; then, for every synced batch that changed one of its
// accounts, an event naming the cause — the ops applied, or the lines a fold made final with
// their fees and voids — with the accounts' new state and a cursor to resume from.
//
// Exactness: what a stream is sent is rendered when the batch holding it is closed (Prepared),
// from the replica's state then — which is what that batch and those before it hold — and sent
// once that batch is synced (Synced). A stream never shows a change a crash could take back, and
// what it is sent on opening is rendered the same way: events of batches its opening already
// covers are not sent to it. Each final line reaches a stream once: its cursor only moves forward.
//
// Threading: io thread only. Unsubscribe is deferred to a posted handler because a stream closes
// itself from inside Send, called from the loops over the subscriptions.

#ifndef TALLY_NODE_STREAM_HUB_H_
#define TALLY_NODE_STREAM_HUB_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/persist_batch.h"
#include "node/net.h"
#include "node/statement_view.h"
#include "node/ws_session.h"

namespace tally::node {

// At most this many final lines are replayed to a stream opening with ?after=; a client further
// behind reads them with GET /v1/accounts/{id}/history and resumes from the last one's cursor.
inline constexpr std::size_t kMaxReplayLines = 10000;
// Lines per replay message.
inline constexpr std::size_t kReplayLinesPerMessage = 500;

class StreamHub {
 public:
  // `from` is read for the accounts' state and their history; everything it points to outlives
  // this. `from.store` is null when the node keeps no history (then nothing is replayed).
  StreamHub(asio::io_context* io, const StatementSources& from) : io_(io), from_(from) {}
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  // Registers `ws` under its id (the id of the HTTP connection it came from; ids are never
  // reused) and, if it is open (authenticated), renders its opening messages, sent once what they
  // show is synced. A stream whose first message must authenticate it is registered (counted,
  // closed by CloseAll) before it is open, and subscribes again once it is.
  void Subscribe(const std::shared_ptr<WsSession>& ws);
  void Unsubscribe(std::uint64_t id);
  // The commit gate just put batch `number` in flight (the replica's state now is what it and the
  // batches before it hold): renders what it changed for the streams following those accounts.
  void Prepared(std::uint64_t number, const PersistBatch& batch);
  // Batch `number` is synced: what it changed goes out.
  void Synced(std::uint64_t number);
  void CloseAll();
  // Closes every stream `allowed` refuses (after a reload of the tokens); returns how many.
  std::size_t CloseUnless(const std::function<bool(const WsSession&)>& allowed);
  std::size_t size() const { return followers_.size(); }
  // How many of them wait for their first message to authenticate them.
  std::size_t awaiting_auth() const;
  bool empty() const { return followers_.empty(); }

 private:
  struct Follower {
    std::shared_ptr<WsSession> ws;
    std::set<std::string, std::less<>> accounts;  // filled once open
    CanonicalKey delivered;  // every final line of its accounts at or before it was sent
    // Its opening messages show the state through this batch: events of batches up to it are not
    // sent; the opening is, once it is synced. 0: opened.
    std::uint64_t opens_at = 0;
    bool render_at_prepare = false;  // opens_at is still the open batch
    std::vector<std::string> opening;
    bool close_after_opening = false;  // the replay was refused
  };
  // One account's part of a batch, rendered once for every stream following it.
  struct AccountChange {
    std::string state;
    bool folded = false;                                    // a fold changed it
    std::vector<std::pair<CanonicalKey, std::string>> ops;  // in apply order
    std::vector<std::pair<CanonicalKey, std::string>> lines;
  };
  struct Rendered {
    std::uint64_t number = 0;
    Hlc fold_frontier;  // zero: the batch holds no fold
    Hlc saved_frontier;
    std::map<std::string, AccountChange, std::less<>> accounts;
  };

  void Open(Follower* f);
  void SendOpening(Follower* f);
  void SendEvents(Follower* f, const Rendered& r);
  void Forget(std::uint64_t id);

  asio::io_context* const io_;
  const StatementSources from_;
  std::map<std::uint64_t, Follower> followers_;
  std::map<std::string, std::size_t, std::less<>> followed_;  // account -> open followers
  std::deque<Rendered> rendered_;                             // batches in flight, oldest first
  std::uint64_t prepared_through_ = 0;
};

}  // namespace tally::node

#endif  // TALLY_NODE_STREAM_HUB_H_
