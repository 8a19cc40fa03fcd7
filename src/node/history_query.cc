#include "node/history_query.h"

#include <fmt/format.h>

#include <charconv>

namespace tally::node {

namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

template <typename T>
bool ParseNumber(std::string_view s, int base, T* out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (Howard Hinnant's
// days_from_civil), in integers.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

unsigned DaysInMonth(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::string HistoryCursor(const CanonicalKey& key) {
  return fmt::format("h{:016x}{:08x}{:016x}", key.hlc.value, key.origin, key.seq);
}

Status ParseHistoryCursor(std::string_view cursor, CanonicalKey* out) {
  const Status bad = Status::InvalidArgument(
      "cursor '" + std::string(cursor.substr(0, 64)) +
      "' is not one this API gave (use next_cursor of the previous page as it is)");
  if (cursor.size() != 41 || cursor[0] != 'h' || !IsLowerHex(cursor.substr(1))) return bad;
  CanonicalKey k;
  if (!ParseNumber(cursor.substr(1, 16), 16, &k.hlc.value) ||
      !ParseNumber(cursor.substr(17, 8), 16, &k.origin) ||
      !ParseNumber(cursor.substr(25, 16), 16, &k.seq) || k.origin >= kMaxRegions ||
      (k.seq == 0 && k.origin != 0))  // seq 0: a position before every op of its time
    return bad;
  *out = k;
  return Status::OK();
}

Status ParseUtcMs(std::string_view text, std::uint64_t* ms) {
  const Status bad = Status::InvalidArgument(
      "time '" + std::string(text.substr(0, 40)) +
      "' is neither a UTC time like 2026-12-05T07:00:00Z nor Unix milliseconds");
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos)
    return ParseNumber(text, 10, ms) && *ms <= Hlc::kMaxWallMs ? Status::OK() : bad;
  // YYYY-MM-DDTHH:MM:SS[.f{1,3}]Z
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text.back() != 'Z')
    return bad;
  std::int64_t year = 0;
  unsigned month = 0, day = 0, hour = 0, minute = 0, second = 0, milli = 0;
  if (!ParseNumber(text.substr(0, 4), 10, &year) || !ParseNumber(text.substr(5, 2), 10, &month) ||
      !ParseNumber(text.substr(8, 2), 10, &day) || !ParseNumber(text.substr(11, 2), 10, &hour) ||
      !ParseNumber(text.substr(14, 2), 10, &minute) ||
      !ParseNumber(text.substr(17, 2), 10, &second))
    return bad;
  std::string_view rest = text.substr(19, text.size() - 20);  // between the seconds and the Z
  if (!rest.empty()) {
    if (rest[0] != '.' || rest.size() < 2 || rest.size() > 4) return bad;
    std::string_view digits = rest.substr(1);
    if (!ParseNumber(digits, 10, &milli)) return bad;
    for (std::size_t i = digits.size(); i < 3; ++i) milli *= 10;
  }
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) ||
      hour > 23 || minute > 59 || second > 59)
    return bad;
  const std::int64_t days = DaysFromCivil(year, month, day);
  *ms = static_cast<std::uint64_t>(days) * 86'400'000 + hour * 3'600'000ull + minute * 60'000ull +
        second * 1000ull + milli;
  return Status::OK();
}

Status ParseLimit(std::string_view value, std::size_t max, std::size_t* out) {
  std::size_t n = 0;
  if (!ParseNumber(value, 10, &n) || n < 1 || n > max)
    return Status::InvalidArgument(
        fmt::format("limit must be an integer in 1..{}, got '{}'", max, value.substr(0, 32)));
  *out = n;
  return Status::OK();
}

Status ParseHistoryParams(const std::vector<std::pair<std::string, std::string>>& params,
                          HistoryQuery* q, std::optional<std::uint64_t>* as_of_ms) {
  *q = HistoryQuery{};
  q->limit = kDefaultHistoryLimit;
  as_of_ms->reset();
  bool paging = false;
  for (const auto& [key, value] : params) {
    if (key == "as_of") {
      std::uint64_t ms = 0;
      if (Status s = ParseUtcMs(value, &ms); !s.ok())
        return Status::InvalidArgument("as_of: " + s.message());
      *as_of_ms = ms;
      continue;
    }
    paging = true;
    if (key == "limit") {
      if (Status s = ParseLimit(value, kMaxHistoryLimit, &q->limit); !s.ok()) return s;
    } else if (key == "order") {
      if (value != "asc" && value != "desc")
        return Status::InvalidArgument("order must be asc (oldest first) or desc (newest first)");
      q->newest_first = value == "desc";
    } else {  // cursor
      CanonicalKey k;
      if (Status s = ParseHistoryCursor(value, &k); !s.ok()) return s;
      q->cursor = k;
    }
  }
  if (*as_of_ms && paging)
    return Status::InvalidArgument(
        "as_of asks for one balance: it takes no limit, order or cursor");
  return Status::OK();
}

}  // namespace tally::node
