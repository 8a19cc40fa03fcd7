// DotBook: which op each dot of a run carries, and whether any copy of that op is left.
//
// A dot (origin, seq) names one op for good: a replica that already holds a dot drops another op
// under it as a duplicate, so two different ops under one dot fork the replicas without anyone
// noticing (issue 9: a region that lost its disk and numbered its ops from 1 again). The book binds
// each dot to a fingerprint of its op — account, kind, amount, key, target region, HLC and, for an
// open, the config — the first time the op is seen anywhere: applied by a replica (its origin
// originating it, a peer receiving it, a region getting its own ops back), sent, or read back by
// Recover. Seeing another op under a bound dot is the violation.
//
// A dot is free again only when no copy of its op is left: in no replica's memory and on no disk.
// The host reports, after each crash and each disk wiped or restored, the highest seq of each
// origin that some region still holds (Release). So a seq may legitimately be issued twice: after
// an op was lost in a crash before it was synced, or when its only durable copies were on a disk
// that was wiped or rolled back before any peer received it. Two kinds of copies do not count:
//   - a message in flight: if it is delivered and applied later, the op is seen again — revived if
//     its dot is still free, a fork if the dot carries another op by then;
//   - a copy of a disk kept for a later restore: restoring it reads its ops back through Recover,
//     where they are seen the same way.
//
// Not thread-safe; one simulation owns one book.

#ifndef TALLY_SIM_DOTS_H_
#define TALLY_SIM_DOTS_H_

#include <cstdint>
#include <vector>

#include "core/types.h"

namespace tally::sim {

class DotBook {
 public:
  enum class Seen : std::uint8_t {
    kNew,       // the dot was never bound: it carries this op now
    kReissued,  // the dot carried another op of which no copy is left: it carries this one now
    kKnown,     // the dot carries this very op
    kRevived,   // this op had no copy left and is back (a late delivery, a restored disk)
    kConflict,  // the dot carries another op that still has a copy somewhere: a fork
    // Ops are told apart by the incarnation (Op::epoch) that issued them too. A region that
    // rejoined after losing ops issues their seqs again under a newer epoch and fences the old
    // ones off (core/fence_book.h); replicas that hold one of those remove it. So:
    kFenced,  // the dot carried a live op of an older incarnation: this one replaces it
    kStale,   // the dot carries an op of a newer incarnation: this is of a lost history
  };

  explicit DotBook(RegionId regions);
  DotBook(const DotBook&) = delete;
  DotBook& operator=(const DotBook&) = delete;

  // `op` seen somewhere. On kConflict nothing changes (the first violation is the one reported).
  Seen See(const Op& op);

  // No region holds any op of origin o above held[o] any more: frees those dots. Returns the dots
  // whose op lost its last copy just now, in (origin, seq) order.
  std::vector<Dot> Release(const VersionVector& held);

  // The op bound to `dot` became durable at its origin.
  void MarkDurable(Dot dot);
  // The op bound to `dot` became durable in region `where`'s store (its origin's or another's).
  void MarkDurableAt(Dot dot, RegionId where);
  // Whether some region other than `not_here` made the op bound to `dot` durable since it last
  // had a copy everywhere lost (Release forgets the disks it was on).
  bool DurableElsewhere(Dot dot, RegionId not_here) const;
  // Whether some region other than `not_here` ever made the op bound to `dot` durable, also if
  // that copy went with a disk since. A replay by another region answers "replicated" on what its
  // peers told it: the word of a region whose disk was lost after it spoke is stale, and the
  // replay cannot know (a second failure, after the one the promise covers).
  bool WasDurableElsewhere(Dot dot, RegionId not_here) const;

  // Whether the op `dot` carries now had been made durable by its origin.
  bool Durable(Dot dot) const;

  // The fingerprint of the op `dot` carries now (0: never bound).
  std::uint64_t Bound(Dot dot) const;
  // Whether the op with this fingerprint is bound to `dot` and some region holds a copy of it.
  bool Holds(Dot dot, std::uint64_t fingerprint) const;

  // The first op of `origin` above seq `above` that some other region made durable and still
  // holds a copy of (seq 0: none); *holders: those regions.
  Dot DurableElsewhereAbove(RegionId origin, Seq above, std::uint32_t* holders) const;
  // The highest seq of `origin` whose op some other region made durable and some region still
  // holds (0: none).
  Seq LastDurableElsewhere(RegionId origin) const;
  // Dots bound to a second op after the first had no copy left (kReissued), over the run.
  std::uint64_t reissued() const { return reissued_; }
  // Ops that were durable at their origin and of which no copy is left now: every durable copy
  // went with a disk. (A lost op that is revived later is not counted.)
  std::uint64_t LostDurable() const;

  // The fingerprint of an op's content (not of its dot).
  static std::uint64_t Fingerprint(const Op& op);

 private:
  struct Binding {
    std::uint64_t fingerprint = 0;
    bool bound = false;
    bool live = false;                  // some region holds a copy
    bool durable = false;               // its origin made it durable
    std::uint32_t durable_at = 0;       // bit r: region r made it durable
    std::uint32_t ever_durable_at = 0;  // the same, never cleared by a lost disk
    std::uint64_t epoch = 0;            // the incarnation of the origin that issued it
  };

  Binding* Find(Dot dot);
  const Binding* Get(Dot dot) const;

  RegionId n_;
  std::vector<std::vector<Binding>> by_origin_;  // per origin, by seq - 1
  std::uint64_t reissued_ = 0;
  std::uint64_t reissued_durable_ = 0;  // of those, the ones whose first op had been durable
};

}  // namespace tally::sim

#endif  // TALLY_SIM_DOTS_H_
