// node::ParseBackupBody: the body of POST /v1/admin/backup (where tallyd writes a copy).
#include <nlohmann/json.hpp>

#include "fuzz.h"
#include "node/api.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tally;
  std::string dir = "sentinel";
  const Status s = node::ParseBackupBody(fuzz::Bytes(data, size), &dir);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kInvalidArgument);
    FUZZ_CHECK(dir == "sentinel");
    return 0;
  }
  FUZZ_CHECK(!dir.empty() && dir[0] == '/' && dir.size() <= node::kMaxBackupDirBytes);
  FUZZ_CHECK(dir.find('\0') == std::string::npos);
  std::string back;
  FUZZ_CHECK(node::ParseBackupBody(nlohmann::json{{"dir", dir}}.dump(), &back).ok());
  FUZZ_CHECK(back == dir);
  return 0;
}
