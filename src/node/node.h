// Node: one running tallyd — the Replica wired to the real world.
//
//   io thread       runs the Replica (single-threaded by contract), the HTTP/WebSocket client API
//                   (Boost.Beast), gossip (Boost.Asio TCP, length-prefixed protobuf frames), the
//                   tick timer and signal handling, all on one io_context;
//   storage thread  writes group commits to LevelDB (Store), one synced WriteBatch at a time.
//
// Every replica call's Effects are handled in the order the contract asks: their ops, keys,
// high-water mark and fold join the next write batch; their messages and client answers wait until
// that batch (and every batch before it) is synced. While one batch syncs the next one fills, so
// many requests share one fsync (group commit). Reads are answered in the same order, so nothing
// a client sees can be lost by a crash.
//
// Open() recovers the replica from the store (refusing a corrupt one) and binds the listeners;
// Run() serves until SIGTERM/SIGINT (then: stop accepting, answer what is in flight, finish the
// last sync, exit 0) or a fatal storage error (exit 1). SIGHUP reloads the tokens, roles and
// certificates (docs/operations.md, "Reloading"); a config that does not load is refused and the
// running one kept.

#ifndef TALLY_NODE_NODE_H_
#define TALLY_NODE_NODE_H_

#include <functional>
#include <memory>

#include "core/status.h"
#include "node/config.h"

namespace tally::node {

class NodeImpl;

// Reads the config again as at start (the same file and command-line overrides): what SIGHUP
// reloads from.
using ConfigLoader = std::function<Status(NodeConfig* out)>;

class Node {
 public:
  // Opens the store, recovers, binds both listeners. Errors: Corruption (the store), IOError (a
  // listener or the data directory), FailedPrecondition (a store of another cluster or region).
  static Status Open(NodeConfig config, ConfigLoader reload, std::unique_ptr<Node>* out);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Serves on the calling thread until shutdown; returns the process exit status.
  int Run();

 private:
  explicit Node(std::unique_ptr<NodeImpl> impl);
  std::unique_ptr<NodeImpl> impl_;
};

}  // namespace tally::node

#endif  // TALLY_NODE_NODE_H_
