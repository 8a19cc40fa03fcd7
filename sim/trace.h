// TraceHash: a 64-bit FNV-1a fingerprint of everything that happened in a run (I5).
//
// The simulator feeds it every delivery, completion, crash, restart and the final digests, in the
// order they happen. Two runs with the same seed and flags must end with the same value; any
// divergence (an unordered iteration, a stray wall-clock read) shows up as a different hash.
//
// It is the core's Fnv64 (core/digest.h) under the name of its role here, not a copy of it.

#ifndef TALLY_SIM_TRACE_H_
#define TALLY_SIM_TRACE_H_

#include "core/digest.h"

namespace tally::sim {

using TraceHash = Fnv64;

}  // namespace tally::sim

#endif  // TALLY_SIM_TRACE_H_
