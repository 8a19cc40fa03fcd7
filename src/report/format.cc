#include "report/format.h"

#include <cmath>
#include <cstdio>

#include "report/report.h"

namespace tally::report {

std::string Num(double v, int decimals) {
  if (std::fabs(v) < 0.5 * std::pow(10.0, -decimals)) v = 0;  // never print "-0"
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string Seconds(std::uint64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s"
                        : Num(ms / 1000.0, ms < 10000 ? 2 : 1) + " s";
}

std::string Duration(std::int64_t ms) {
  std::string sign = ms < 0 ? "−" : "+";
  std::uint64_t a = ms < 0 ? static_cast<std::uint64_t>(-ms) : static_cast<std::uint64_t>(ms);
  if (a >= 3'600'000) return sign + Num(a / 3'600'000.0, 1) + " h";
  if (a >= 60'000) return sign + Num(a / 60'000.0, 1) + " min";
  if (a >= 1000) return sign + Num(a / 1000.0, 1) + " s";
  return sign + std::to_string(a) + " ms";
}

std::string Color(std::size_t i) {
  static const char* const kPalette[] = {
      "#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
      "#393b79", "#7b4173", "#3182bd", "#8c6d31", "#5254a3", "#de9ed6", "#6baed6", "#bd9e39"};
  return kPalette[i % (sizeof kPalette / sizeof *kPalette)];
}

std::string RegionName(const std::vector<std::string>& names, RegionId r) {
  return r < names.size() ? names[r] : "r" + std::to_string(r);
}

std::string DotText(const std::vector<std::string>& names, RegionId origin, Seq seq) {
  return RegionName(names, origin) + ":" + std::to_string(seq);
}

std::string HlcHtml(Hlc h) {
  const std::string utc = UtcTime(h.wall_ms());
  return "<time datetime='" + utc + "' title='HLC " + h.ToString() + "'>" + utc + "</time>";
}

std::string MoneyHtml(Amount v, std::string_view currency) {
  return HtmlEscape(MoneyText(v, currency));
}

std::string LevelClass(Amount v, bool tentative) {
  std::string c = v < 0 ? "neg" : tentative ? "tent" : "final";
  if (tentative) c += " tm";
  return c;
}

std::string LevelHtml(Amount v, std::string_view currency, bool tentative) {
  return "<span class='amt " + LevelClass(v, tentative) + "'>" + MoneyHtml(v, currency) + "</span>";
}

std::string UtcTime(std::uint64_t wall_ms) {
  const std::uint64_t in_day = wall_ms % 86'400'000;
  // Civil date from days since 1970-01-01 (H. Hinnant's civil_from_days), in integers: no locale,
  // no time zone, no leap seconds (Unix time has none). The HLC's 48 bits reach year 10889.
  std::int64_t days = static_cast<std::int64_t>(wall_ms / 86'400'000) + 719468;
  const std::int64_t era = days / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2);
  char buf[80];  // room for any int64 year, to quiet -Wformat-truncation
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02llu:%02llu:%02llu.%03lluZ",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<unsigned long long>(in_day / 3'600'000),
                static_cast<unsigned long long>(in_day / 60'000 % 60),
                static_cast<unsigned long long>(in_day / 1000 % 60),
                static_cast<unsigned long long>(in_day % 1000));
  return buf;
}

std::string MoneyText(Amount v, std::string_view currency) {
  // tally keeps amounts as integer minor units and knows no currency's exponent, so the figure is
  // printed as stored; the page's legend says so.
  std::string s = std::to_string(v);
  if (!currency.empty()) {
    s += ' ';
    s += currency;
  }
  return s;
}

namespace {

// Basis points as a percentage, in integers: 150 bps is "1.50%".
std::string Percent(std::uint32_t bps) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%u.%02u%%", bps / 100, bps % 100);
  return buf;
}

}  // namespace

std::string FeePolicyText(const FeePolicy& fee, std::string_view currency) {
  if (fee.flat == 0 && fee.bps == 0) return "no overdraft fee";
  std::string s = "overdraft fee ";
  if (fee.flat != 0) s += MoneyText(fee.flat, currency);
  if (fee.flat != 0 && fee.bps != 0) s += " + ";
  if (fee.bps != 0)
    s += Percent(fee.bps) + " (" + std::to_string(fee.bps) +
         " bps) of the amount below zero (rounded up)";
  return s + ", once per episode, charged to the debit that takes the balance below zero";
}

std::string FeePolicyBrief(const FeePolicy& fee, std::string_view currency) {
  if (fee.flat == 0 && fee.bps == 0) return "none";
  std::string s;
  if (fee.flat != 0) s += MoneyText(fee.flat, currency);
  if (fee.flat != 0 && fee.bps != 0) s += " + ";
  if (fee.bps != 0) s += Percent(fee.bps);
  return s + " per episode";
}

}  // namespace tally::report
