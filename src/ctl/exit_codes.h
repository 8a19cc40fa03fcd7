// Exit codes of tallyctl, the contract scripts rely on. Documented in `tallyctl --help` and in
// docs/operations.md ("## tallyctl"); never renumber them.

#ifndef TALLY_CTL_EXIT_CODES_H_
#define TALLY_CTL_EXIT_CODES_H_

namespace tally::ctl {

inline constexpr int kExitOk = 0;
// The request worked but the answer is "no": insufficient funds (HTTP 402), regions that disagree
// (reconcile), a node that is not healthy yet (health --wait-s ran out).
inline constexpr int kExitNotOk = 1;
// Bad command line: unknown option, missing argument, an amount that is not a positive integer.
inline constexpr int kExitUsage = 2;
// No answer: connection refused, reset or timed out. Safe to retry credits/debits with the same
// idempotency key.
inline constexpr int kExitUnreachable = 3;
// The server refused the request (HTTP 4xx other than 402): the error code is printed.
inline constexpr int kExitClientError = 4;
// The server failed (HTTP 5xx) or sent something that is not the documented JSON.
inline constexpr int kExitServerError = 5;

}  // namespace tally::ctl

#endif  // TALLY_CTL_EXIT_CODES_H_
