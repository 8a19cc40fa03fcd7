#include "node/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "node/log.h"

namespace tally::node {

AuditLog::~AuditLog() {
  Flush();
  if (owned_ && file_) std::fclose(file_);
}

Status AuditLog::Open(const std::string& path, std::string region) {
  region_ = std::move(region);
  if (path == "-") {
    file_ = stderr;
    return Status::OK();
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::IOError("audit.path " + path + ": cannot be opened: " + std::strerror(errno));
  file_ = ::fdopen(fd, "a");
  if (!file_) {
    ::close(fd);
    return Status::IOError("audit.path " + path + ": " + std::strerror(errno));
  }
  owned_ = true;
  return Status::OK();
}

bool AuditLog::Audited(Route route, int http_status) {
  return http_status >= 400 || route == Route::kOpenAccount || route == Route::kCredit ||
         route == Route::kDebit || route == Route::kRights || route == Route::kTransfer ||
         route == Route::kHold || route == Route::kCapture || route == Route::kRelease;
}

void AuditLog::Answered(Route route, int http_status, std::string_view body,
                        const AuditFacts& facts) {
  if (!file_ || !Audited(route, http_status)) return;
  nlohmann::ordered_json line{{"time", NowIso8601()},
                              {"region", region_},
                              {"request_id", facts.request_id},
                              {"token", facts.token.empty() ? nlohmann::ordered_json()
                                                            : nlohmann::ordered_json(facts.token)},
                              {"remote", facts.remote},
                              {"route", RouteName(route)},
                              {"status", http_status}};
  if (!facts.account.empty()) line["account"] = facts.account;
  if (!facts.payee.empty()) line["payee"] = facts.payee;
  if (facts.amount != 0) line["amount"] = facts.amount;
  if (!facts.idempotency_key.empty()) line["idempotency_key"] = facts.idempotency_key;
  std::string result = "ok";
  if (http_status >= 400) {
    const auto error = nlohmann::json::parse(body, nullptr, false);
    result = error.is_object() && error.contains("error") && error["error"].is_object() &&
                     error["error"].contains("code") && error["error"]["code"].is_string()
                 ? error["error"]["code"].get<std::string>()
                 : "http_" + std::to_string(http_status);
  }
  line["result"] = result;  // last: read left to right, what was asked, then what came of it
  // Headers and ids come from clients: bytes that are not UTF-8 are replaced, never thrown on.
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), file_);
  ++lines_;
}

void AuditLog::Flush() {
  if (file_) std::fflush(file_);
}

}  // namespace tally::node
