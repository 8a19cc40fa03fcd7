// What GET /v1/accounts/{id}/history asks (docs/operations.md, "GET /v1/accounts/{id}/history"):
// the page of an account's statement — its size, its direction and the opaque cursor it continues
// from — or, with `as_of`, the balance at a time. Parsed here from the query string, as pure
// functions, so every refusal is a unit test.
//
// A cursor names a line by its op's canonical key, which never changes: a page never repeats or
// skips a line that was there when the previous page was read, however many ops arrive between.
//
// Thread-safe: pure functions.

#ifndef TALLY_NODE_HISTORY_QUERY_H_
#define TALLY_NODE_HISTORY_QUERY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace tally::node {

// Which lines of one account to read: `limit` of them, newest first or oldest first, beyond
// `cursor` in that direction (none: from the newest, or the oldest).
struct HistoryQuery {
  bool newest_first = true;
  std::optional<CanonicalKey> cursor;
  std::size_t limit = 100;
};

inline constexpr std::size_t kDefaultHistoryLimit = 100;
inline constexpr std::size_t kMaxHistoryLimit = 1000;

// "h" and the key's hlc, origin and seq in fixed-width lowercase hex (41 characters). Besides an
// op's key, a cursor may name the position just before every op of a time (origin and seq 0: a
// stream's cursor at a frontier, stream_events.h); no op has seq 0.
std::string HistoryCursor(const CanonicalKey& key);
// InvalidArgument for anything HistoryCursor did not make.
Status ParseHistoryCursor(std::string_view cursor, CanonicalKey* out);

// A time as Unix milliseconds: an ISO 8601 UTC time with a "Z" ("2026-12-05T07:00:00Z", with an
// optional fraction of up to 3 digits) or the milliseconds themselves ("1796454000000").
// InvalidArgument otherwise (another zone, a date that does not exist, before 1970).
Status ParseUtcMs(std::string_view text, std::uint64_t* ms);

// A page size in 1..max.
Status ParseLimit(std::string_view value, std::size_t max, std::size_t* out);

// The history route's query parameters (limit, cursor, order=asc|desc, as_of), already split and
// percent-decoded; unknown ones are refused before this. `as_of` excludes the paging ones.
Status ParseHistoryParams(const std::vector<std::pair<std::string, std::string>>& params,
                          HistoryQuery* q, std::optional<std::uint64_t>* as_of_ms);

}  // namespace tally::node

#endif  // TALLY_NODE_HISTORY_QUERY_H_
