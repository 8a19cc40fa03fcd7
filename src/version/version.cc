#include "version/version.h"

#include "version_info.h"

namespace tally {

std::string_view Version() { return TALLY_VERSION; }
std::string_view GitRevision() { return TALLY_GIT_REVISION; }

std::string VersionLine(std::string_view program) {
  return std::string(program) + " " + std::string(Version()) + " (git " +
         std::string(GitRevision()) + ")";
}

}  // namespace tally
