// StatementCheck: the simulator's oracle for statement lines (Fold::lines, core/replica_types.h),
// fed every batch a region's store makes durable. It shares no code with what makes the lines.
//
//   I7 agreement: a line is the same at every region that stores it — one line per account and op,
//   with the same fee, void and balance after it, whichever region folded it first.
//   I3 conservation, line by line: at one region, each line's balance is the one before it there,
//   plus its change unless it is voided, less its fee — the numbers on the lines add up.
//
// Agreement is between the lines stores hold: a region forgets what it stored when a snapshot
// replaces its store (its lines go with it) and when its disk is wiped or put back from a copy
// (Forget). That is not leniency: a line final at one region can be undone where a region's lost
// history held ops that fed it (their fences remove them, and the regions that folded them replace
// their state, lines and all), so only lines still stored must agree. A region's run of lines
// starts again there too.
//
// Memory: per (account, op) line a 64-bit id, a 64-bit digest of its content and which regions
// store it, in one open-addressing table (24 bytes a slot, at most half full). A node-based map
// plus per-region lists of ids took about 100 bytes a line: a tenth of a 1M-op run's peak.
// Not thread-safe; one Simulation owns it.

#ifndef TALLY_SIM_STATEMENT_CHECK_H_
#define TALLY_SIM_STATEMENT_CHECK_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/persist_batch.h"

namespace tally::sim {

class StatementCheck {
 public:
  explicit StatementCheck(RegionId regions) : last_(regions) {}

  // `batch` became durable at region r. Returns "<invariant>: <what>" for the first problem, or "".
  std::string See(RegionId r, const PersistBatch& batch);
  // Region r's store lost its lines (a snapshot replaced it, its disk was wiped or restored).
  void Forget(RegionId r);

  std::uint64_t lines_checked() const { return lines_checked_; }

 private:
  struct Last {
    CanonicalKey key;
    Amount balance = 0;
  };
  std::string SeeLine(RegionId r, const StatementLine& line);

  // Per region, by account: the line with the highest key it stored (looked up, never iterated).
  std::vector<std::unordered_map<std::string, Last>> last_;
  struct Stored {
    std::uint64_t id = 0;       // digest of (account, op), never 0; 0: a free slot
    std::uint64_t content = 0;  // digest of the line every region that stores it must store
    std::uint32_t regions = 0;  // bit r: region r stores it; 0: no region does (as if absent)
  };
  // The slot of line `id`: its own, or the free one it is to take. Grows the table first.
  Stored* Slot(std::uint64_t id);

  // Lines by id, linear probing over a power-of-two table. A line no region stores any more keeps
  // its slot (regions 0) and counts as absent; Forget walks the whole table (it is rare: a
  // snapshot installed, a disk replaced).
  std::vector<Stored> lines_;
  std::size_t used_ = 0;  // slots with an id
  std::uint64_t lines_checked_ = 0;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_STATEMENT_CHECK_H_
