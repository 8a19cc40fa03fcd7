// Status: the outcome of an operation that can fail for a reason the caller must handle (bad input,
// insufficient funds, a corrupt store). Programmer errors are assertions, not Statuses.
//
// A Status is a small value; copy it freely. Multiple threads may call const methods on one Status
// without synchronization.

#ifndef TALLY_CORE_STATUS_H_
#define TALLY_CORE_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

namespace tally {

enum class Code : unsigned char {
  kOk = 0,
  kInvalidArgument,       // malformed or out-of-range input; nothing was changed
  kNotFound,              // unknown account, route, key
  kAlreadyExists,         // e.g. an account opened again with a different config
  kInsufficientFunds,     // a debit or transfer that rights plus overdraft line cannot cover
  kIdempotencyKeyReused,  // a key bound to a different request
  kConflict,              // a request with the same key is still in progress
  kFailedPrecondition,    // the state does not allow it (e.g. a transfer to oneself)
  kUnauthenticated,
  kPermissionDenied,
  kResourceExhausted,  // a bound was hit: message size, queue length, counter cap
  kUnavailable,        // retry later
  kCorruption,         // stored or received data fails its checks
  kIOError,
  kInternal,
};

class Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status InsufficientFunds(std::string m) {
    return {Code::kInsufficientFunds, std::move(m)};
  }
  static Status IdempotencyKeyReused(std::string m) {
    return {Code::kIdempotencyKeyReused, std::move(m)};
  }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Stable snake_case name of the code ("insufficient_funds"): the `code` of API errors.
  std::string_view code_name() const { return CodeName(code_); }
  static std::string_view CodeName(Code c);

  // "insufficient_funds: need 50, rights 20 + overdraft line 10" (or "ok").
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

inline std::string_view Status::CodeName(Code c) {
  switch (c) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid_argument";
    case Code::kNotFound:
      return "not_found";
    case Code::kAlreadyExists:
      return "already_exists";
    case Code::kInsufficientFunds:
      return "insufficient_funds";
    case Code::kIdempotencyKeyReused:
      return "idempotency_key_reused";
    case Code::kConflict:
      return "conflict";
    case Code::kFailedPrecondition:
      return "failed_precondition";
    case Code::kUnauthenticated:
      return "unauthenticated";
    case Code::kPermissionDenied:
      return "permission_denied";
    case Code::kResourceExhausted:
      return "resource_exhausted";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kCorruption:
      return "corruption";
    case Code::kIOError:
      return "io_error";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

inline std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(code_name());
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace tally

#endif  // TALLY_CORE_STATUS_H_
