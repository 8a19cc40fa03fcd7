// A fresh directory under the system temp dir for one test, removed with everything in it when
// the test ends. Set TALLY_KEEP_TEST_DIRS=1 to keep it (with its data and logs) for inspection.
// Header-only so the unit tests can use it without the process harness.

#ifndef TALLY_TESTS_NODE_TEMP_DIR_H_
#define TALLY_TESTS_NODE_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tally::test {

class TempDir {
 public:
  // Named tally-<tag>-XXXXXX.
  explicit TempDir(const std::string& tag) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("tally-" + tag + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    const char* keep = std::getenv("TALLY_KEEP_TEST_DIRS");
    if (keep && *keep && std::string(keep) != "0") return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tally::test

#endif  // TALLY_TESTS_NODE_TEMP_DIR_H_
