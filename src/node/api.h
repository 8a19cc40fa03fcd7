// The client API's edge: routing, request validation and the Status -> HTTP mapping, as pure
// functions of bytes (no sockets, no replica), so every refusal can be tested without a server.
//
// Requests are checked completely here — JSON syntax, duplicate and unknown fields, types,
// integer amounts in range, account ids, idempotency keys, region names — and refused with
// InvalidArgument naming the problem, so nothing malformed reaches the replica or the store.
//
// Routes (docs/operations.md, "Client API"):
//   POST /v1/accounts                     GET  /v1/accounts/{id}
//   POST /v1/accounts/{id}/credits        POST /v1/accounts/{id}/debits
//   POST /v1/accounts/{id}/rights         GET  /v1/accounts/{id}/report[?format=json|html]
//   GET  /v1/accounts[?prefix=&limit=&cursor=]
//   GET  /v1/accounts/{id}/history[?limit=&cursor=&order=asc|desc | ?as_of=<time>]
//   POST /v1/transfers                    POST /v1/accounts/{id}/holds
//   GET  /v1/holds/{hold}                 POST /v1/holds/{hold}/capture   POST .../release
//   GET  /v1/cluster                      GET  /v1/stream?accounts=a,b   (WebSocket)
//   POST /v1/admin/backup
//   GET  /metrics                         GET  /healthz (liveness)   GET  /readyz
//   GET  /ui (the operator page: HTML, no authentication, operator_page.h)
//
// Thread-safe: everything here is a pure function.

#ifndef TALLY_NODE_API_H_
#define TALLY_NODE_API_H_

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/replica.h"
#include "core/status.h"
#include "core/types.h"
#include "node/auth.h"
#include "node/history_query.h"

namespace tally::node {

enum class Route : std::uint8_t {
  kOpenAccount = 0,
  kGetAccount,
  kCredit,
  kDebit,
  kRights,
  kReport,
  kCluster,
  kStream,
  kMetrics,
  kHealth,
  kReady,
  kBackup,
  kTransfer,      // POST /v1/transfers: money between accounts
  kHold,          // POST /v1/accounts/{id}/holds
  kGetHold,       // GET  /v1/holds/{hold}
  kCapture,       // POST /v1/holds/{hold}/capture
  kRelease,       // POST /v1/holds/{hold}/release
  kListAccounts,  // GET /v1/accounts?prefix=&limit=&cursor=
  kHistory,       // GET /v1/accounts/{id}/history?limit=&cursor=&order= or ?as_of=
  kOperatorPage,  // GET /ui: the operator page, which carries no data (no token, like kHealth)
  kBatch,         // POST /v1/batch: many ops, each with its own key and result (batch_request.h)
  kUnknown,       // no such route, wrong method, or a request refused before routing (last)
};
inline constexpr int kRouteCount = 22;
// Stable snake_case label for metrics and logs ("debit").
std::string_view RouteName(Route r);

// The methods a route's path allows, for a 405's Allow header ("GET, POST" for /v1/accounts).
std::string_view AllowedMethods(Route r);

// The permission a route asks of the caller's token (for GET /v1/stream: read, on every account).
Permission PermissionFor(Route r);

// Whether an X-Request-Id header may be used as the request's id (audit log, answers): 1..128
// bytes of [A-Za-z0-9._:-]. Anything else is replaced by an id the node makes.
bool IsValidRequestId(std::string_view id);

enum class Method : std::uint8_t { kGet, kPost, kOther };

// The one method a route answers (the Allow header of a 405).
Method MethodOf(Route r);

struct RouteMatch {
  Route route = Route::kUnknown;
  std::string account;                // routes under /v1/accounts/{id}, percent-decoded, validated
  bool html = false;                  // kReport with ?format=html
  std::vector<std::string> accounts;  // kStream: the ?accounts= list, validated, deduplicated
  std::optional<CanonicalKey> stream_after;  // kStream: ?after=, the cursor to resume from
  std::string hold;  // routes under /v1/holds/{hold}: the id as sent (HoldId)
  // kListAccounts: ids starting with `prefix`, after the id `after` (the cursor, decoded), at most
  // `limit` of them.
  std::string prefix, after;
  std::size_t limit = 0;
  // kHistory: the page asked for, or the time of the balance asked for (then no page).
  HistoryQuery history;
  std::optional<std::uint64_t> as_of_ms;
};

// GET /v1/accounts: the page size when none is asked for, and the most a page holds.
inline constexpr std::size_t kDefaultListLimit = 100;
inline constexpr std::size_t kMaxListLimit = 1000;
// The opaque cursor of a page that ends at account `id` (the next page starts after it).
std::string ListCursor(std::string_view id);

inline constexpr std::size_t kMaxStreamAccounts = 100;

// Matches method and target ("/v1/accounts/a1/debits?x=y"). NotFound for an unknown path,
// FailedPrecondition with a message "method not allowed" for a known path with the wrong method
// (HTTP 405), InvalidArgument for a bad account id, bad percent-encoding or a bad query.
Status MatchRoute(Method method, std::string_view target, RouteMatch* out);

// The content type of every JSON answer.
inline constexpr std::string_view kJson = "application/json";

// The HTTP status for each Status code: the one table of the API.
int HttpStatusFor(Code code);
std::string_view ReasonPhrase(int http_status);

// {"error":{"code":"<code_name>","message":"..."}}
// `extra_fields`: more members of the error object, each written as `,"name":value`.
std::string ErrorJson(const Status& s, std::string_view extra_fields = {});
// As ErrorJson, plus the numbers behind an insufficient_funds refusal (and, while the account's
// open is not final, the line not yet usable and the regions it waits for, by name).
std::string InsufficientFundsJson(const CommandResult& r, const std::vector<std::string>& regions);
// Appends `s` as a JSON string literal (quotes and escapes) to *out.
void AppendJsonString(std::string_view s, std::string* out);

// Parses `text` as a JSON object, refusing syntax errors (with the parser's position), duplicate
// field names at any depth (which would make "which value counts" ambiguous) and non-objects, with
// InvalidArgument naming `what` ("request body", "message"). Every request body and stream message
// is read through it.
Status ParseJsonObject(std::string_view text, std::string_view what, nlohmann::ordered_json* out);
// What a JSON value is, for messages: "a string", "an integer", "an array", ...
std::string_view JsonTypeName(const nlohmann::ordered_json& v);

// Defaults for the fields a POST /v1/accounts may leave out.
struct AccountDefaults {
  std::string currency = "EUR";
  Amount overdraft_limit = 0;
  FeePolicy fee;
};

// {"id", "currency"?, "overdraft_limit"?, "fee"?: {"flat"?, "bps"?}, "parent"?, "cap"?}. lines is
// left empty (the replica splits the limit evenly). `parent` is an account id and `cap` a boolean;
// whether the parent exists, shares the currency and is shallow enough is the replica's to say.
Status ParseOpenAccountBody(std::string_view body, const AccountDefaults& defaults,
                            AccountConfig* out);
// The optional note of a credit, debit, transfer or hold (docs/operations.md, "Memo and
// metadata"): "memo", a string, and "metadata", an object whose values are strings, within the
// bounds of core/validate.h (ValidateMemo, ValidateMetadata). Metadata keeps the order of the
// body; a key given twice is refused, like any field given twice.
struct Note {
  std::string memo;
  Metadata metadata;
};

// The parsers below take "memo" and "metadata" where they are given a `note` to fill (or, for a
// transfer, always: Transfer carries them); without one, those fields are unknown ones.
//
// {"amount", "memo"?, "metadata"?}: amount an integer in 1..kMaxOpAmount.
Status ParseAmountBody(std::string_view body, Amount* amount, Note* note = nullptr);
// {"amount", "fallback"?, "memo"?, "metadata"?}: the body of a debit; `fallback` (a boolean,
// default false) lets an ancestor budget pay (docs/design.md, "Budgets in a hierarchy").
Status ParseDebitBody(std::string_view body, Amount* amount, bool* fallback, Note* note = nullptr);
// {"to": "<region name>", "amount"}: the body of a rights move; `regions` are the names indexed by
// id; `self` may not be the target.
Status ParseRightsBody(std::string_view body, const std::vector<std::string>& regions,
                       RegionId self, RegionId* to, Amount* amount);
// {"from": "<account>", "to": "<account>", "amount", "memo"?, "metadata"?}: the body of POST
// /v1/transfers. Both ids valid and different; whether they exist and share a currency is the
// replica's to say.
Status ParseTransferBody(std::string_view body, Transfer* out);
// A hold's id in the API: "<region name>.<seq>" of the hold op's dot ("eu.42"); region names have
// no '.', so it is unambiguous.
std::string HoldId(Dot hold, const std::vector<std::string>& regions);
// InvalidArgument for anything but "<region of the cluster>.<seq >= 1>".
Status ParseHoldId(std::string_view id, const std::vector<std::string>& regions, Dot* out);
// {"amount", "expires_in_ms"?, "memo"?, "metadata"?}: the body of POST /v1/accounts/{id}/holds.
// The expiry is 1..kMaxHoldExpiryMs (the replica bounds it further by its key retention); absent,
// kDefaultHoldExpiryMs.
inline constexpr std::uint64_t kDefaultHoldExpiryMs = 10 * 60 * 1000;
inline constexpr std::uint64_t kMaxHoldExpiryMs = 366ull * 24 * 3600 * 1000;
Status ParseHoldBody(std::string_view body, Amount* amount, std::uint64_t* expires_in_ms,
                     Note* note = nullptr);
// {"amount"?}: the body of a capture, empty or {} meaning the whole hold (*amount = 0).
Status ParseCaptureBody(std::string_view body, Amount* amount);
// Empty or {}: the body of a release.
Status ParseReleaseBody(std::string_view body);
// The Idempotency-Key header: required, and as core/ids.h has it.
Status ValidateIdempotencyKeyHeader(std::string_view value, bool present);

// The Durability header: "local" or "replicated"; absent (`present` false), `by_default`.
Status ParseDurabilityHeader(std::string_view value, bool present, bool by_default,
                             bool* replicated);

// What a write request carries besides its route and account.
struct WriteRequest {
  std::string_view body;
  bool has_key = false;  // an Idempotency-Key header was sent
  std::string_view key;
};

// The command a write route (kOpenAccount, kCredit, kDebit, kTransfer, kRights, kHold) asks for,
// checked
// completely: the Idempotency-Key (required on credits, debits and transfers, checked when present
// on rights moves), then the body. `account` is the route's; an open names its account in the
// body, a transfer both of its accounts. `regions` and `self` are as ParseRightsBody has them.
Status ParseWriteCommand(Route route, std::string account, const WriteRequest& req,
                         const AccountDefaults& defaults, const std::vector<std::string>& regions,
                         RegionId self, CommandBody* out);

inline constexpr std::size_t kMaxBackupDirBytes = 4096;  // PATH_MAX on Linux

// {"dir": "/absolute/path"}: where POST /v1/admin/backup writes the copy. Absolute, because a
// relative path would be resolved against tallyd's working directory, which the caller cannot
// see; at most kMaxBackupDirBytes, no NUL. Whether it exists and is empty is the store's check.
Status ParseBackupBody(std::string_view body, std::string* dir);

}  // namespace tally::node

#endif  // TALLY_NODE_API_H_
