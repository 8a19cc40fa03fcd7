// What build of tally this is: the project version and the git revision it was built from, for
// every binary's --version and tallyd's tally_build_info metric. Plain functions over constants;
// safe from any thread.

#ifndef TALLY_VERSION_VERSION_H_
#define TALLY_VERSION_VERSION_H_

#include <string>
#include <string_view>

namespace tally {

// "0.1.0".
std::string_view Version();
// `git describe --always --dirty` of the source tree at build time ("a3a2f23c41d0-dirty"), or
// "unknown" when it was not a git checkout.
std::string_view GitRevision();
// The line --version prints: "tallyd 0.1.0 (git a3a2f23c41d0)".
std::string VersionLine(std::string_view program);

}  // namespace tally

#endif  // TALLY_VERSION_VERSION_H_
