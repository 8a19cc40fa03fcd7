// StreamHub: the open GET /v1/stream subscriptions, and what each is sent — its accounts' state
// when it subscribes, then every account of its list that a synced batch changed, each changed
// account rendered once per batch however many streams follow it.
//
// Threading: io thread only. Unsubscribe is deferred to a posted handler because a stream closes
// itself from inside Send, called from Notify's loop over the subscriptions.

#ifndef TALLY_NODE_STREAM_HUB_H_
#define TALLY_NODE_STREAM_HUB_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "core/persist_batch.h"
#include "core/replica.h"
#include "node/net.h"
#include "node/views.h"
#include "node/ws_session.h"

namespace tally::node {

class StreamHub {
 public:
  // `replica` is read for the accounts' state; both outlive this.
  StreamHub(asio::io_context* io, Replica* replica, const RegionNames* regions)
      : io_(io), replica_(replica), regions_(regions) {}
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  // Registers `ws` under its id (the id of the HTTP connection it came from; ids are never
  // reused) and, if it is open (authenticated), sends its accounts' current state. A stream whose
  // first message must authenticate it is registered (counted, closed by CloseAll) before it is
  // open, and subscribes again once it is. Call once everything before is synced.
  void Subscribe(const std::shared_ptr<WsSession>& ws);
  void Unsubscribe(std::uint64_t id);
  // `batch` was synced: every stream following an account it changed gets its new state.
  void Notify(const PersistBatch& batch);
  void CloseAll();
  // Closes every stream `allowed` refuses (after a reload of the tokens); returns how many.
  std::size_t CloseUnless(const std::function<bool(const WsSession&)>& allowed);
  std::size_t size() const { return streams_.size(); }
  // How many of them wait for their first message to authenticate them.
  std::size_t awaiting_auth() const;
  bool empty() const { return streams_.empty(); }

 private:
  asio::io_context* const io_;
  Replica* const replica_;
  const RegionNames* const regions_;
  std::map<std::uint64_t, std::shared_ptr<WsSession>> streams_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_STREAM_HUB_H_
