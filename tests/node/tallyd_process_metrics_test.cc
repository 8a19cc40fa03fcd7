// The process_* families' parser of /proc/<pid>/stat (node/process_metrics.h), and the page it
// renders for this very process.

#include <catch2/catch.hpp>

#include "node/process_metrics.h"
#include "version/version.h"

using namespace tally;
using namespace tally::node;

TEST_CASE("/proc/self/stat is read by field number, counted after the command's last ')'",
          "[metrics]") {
  // A command name with spaces and parentheses, as a process may name itself.
  const std::string line =
      "4242 (tall) y (d)) S 1 4242 4242 0 -1 4194560 1200 0 0 0 "
      "750 125 0 0 20 0 9 0 81234 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 "
      "0 0 17 1 0 0 0 0 0\n";
  const std::optional<ProcStat> s = ParseProcStat(line);
  REQUIRE(s.has_value());
  CHECK(s->utime_ticks == 750);
  CHECK(s->stime_ticks == 125);
  CHECK(s->start_ticks == 81234);
  CHECK(s->vsize_bytes == 123456789);
  CHECK(s->rss_pages == 2048);
}

TEST_CASE("a stat line in another format is refused, not read as zeros", "[metrics]") {
  CHECK_FALSE(ParseProcStat("").has_value());
  CHECK_FALSE(ParseProcStat("no parenthesis at all 1 2 3").has_value());
  CHECK_FALSE(ParseProcStat("1 (x) S 1 2 3").has_value());  // too few fields
  CHECK_FALSE(ParseProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 0 0 20 0 1 0 5 6 7").has_value());
}

TEST_CASE("the page names the build and this process's figures", "[metrics]") {
  std::string page;
  RenderProcessMetrics(&page);
  CHECK(page.find("tally_build_info{version=\"" + std::string(Version()) + "\",revision=\"" +
                  std::string(GitRevision()) + "\"} 1\n") != std::string::npos);
  for (const char* family : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                             "process_virtual_memory_bytes ", "process_start_time_seconds ",
                             "process_open_fds ", "process_max_fds "}) {
    INFO(family);
    CHECK(page.find(std::string("\n") + family) != std::string::npos);
  }
}
