// Validation of the values that reach the core from outside — a client, a peer, a disk, a config
// file — written once. The codec checks what it encodes and decodes with these (so a region never
// sends what its peers must drop), the replica what it accepts, tallyd's config what it parses.
// Names (account ids, keys, regions, currencies) and amounts are in core/ids.h.
//
// The rules any replica applies, whatever its cluster's size: a region id below kMaxRegions,
// lines for at most kMaxRegions regions. The `...For` functions add what a cluster of `regions`
// regions needs (origin and target below its region count, one line per region).
//
// Each returns OK or InvalidArgument naming the problem. Stateless; safe from any thread.

#ifndef TALLY_CORE_VALIDATE_H_
#define TALLY_CORE_VALIDATE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/messages.h"
#include "core/status.h"
#include "core/types.h"

namespace tally {

inline constexpr std::size_t kMaxClusterIdBytes = 64;
inline constexpr std::uint32_t kMaxFeeBps = 10000;  // 100 % of the overdrawn amount

// 1..64 bytes of printable ASCII without spaces.
Status ValidateClusterId(std::string_view id);
// Below kMaxRegions; `what` names the field ("origin").
Status ValidateRegion(RegionId r, std::string_view what);
// Within 0..max; `what` names the field ("flat fee").
Status ValidateWithin(Amount v, Amount max, std::string_view what);
// One of the op kinds this version knows.
bool IsKnownOpKind(OpKind k);
// An account's config: a valid id and currency; a limit within 0..kMaxCounter; lines empty (not
// split yet) or at most kMaxRegions, each non-negative, adding up to the limit; a flat fee within
// 0..kMaxOpAmount and at most kMaxFeeBps basis points.
Status ValidateAccountConfig(const AccountConfig& c);
// The fields an op and a key record share: a dot with seq >= 1, a known kind, a valid account, a
// positive amount (an open's is carried, not interpreted: 0..kMaxOpAmount), a target region, and
// no transfer of a region to itself.
Status ValidateOpFields(const Dot& dot, OpKind kind, const std::string& account, Amount amount,
                        RegionId to);
// An op's memo: at most kMaxMemoBytes of UTF-8 text (empty: none). Text is well-formed UTF-8
// without control characters (C0, DEL, C1): a memo is one line, shown in reports and terminals
// as sent. The message names the field and the bound ("memo is 141 bytes; at most 140").
Status ValidateMemo(std::string_view memo);
// An op's metadata: at most kMaxMetadataPairs pairs of text as a memo is, keys non-empty and
// distinct, at most kMaxMetadataBytes of keys and values in all.
Status ValidateMetadata(const Metadata& metadata);
// An op: its fields, its idempotency key if any, a config exactly when it is an open (for the
// account it opens), and a memo and metadata within bounds, only on the kinds that carry them
// (MayCarryNote).
Status ValidateOp(const Op& op);

// The core's rules, and one overdraft line per region of the cluster.
Status ValidateConfigFor(const AccountConfig& c, RegionId regions);
// The core's rules, and origin and target regions (and an open's lines) of the cluster.
Status ValidateOpFor(const Op& op, RegionId regions);
// A stored idempotency record: a valid account, a dot of the cluster, a key hash.
Status ValidateKeyRecordFor(const KeyRecord& k, RegionId regions);

}  // namespace tally

#endif  // TALLY_CORE_VALIDATE_H_
