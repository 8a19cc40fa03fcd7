// Seeds for the property tests of the core. Every generator derives from Catch's --rng-seed (pinned
// in CTest), and each generated case prints the seed that rebuilds it, so any failure reproduces
// with `--rng-seed <n>` and the case number printed next to it.

#ifndef TALLY_TESTS_CORE_TEST_SEED_H_
#define TALLY_TESTS_CORE_TEST_SEED_H_

#include <catch2/catch.hpp>
#include <cstdint>

namespace tally::testing {

// A well-mixed 64-bit seed for case `case_index` of the current run (splitmix64 of rng-seed,
// index).
inline std::uint64_t CaseSeed(std::uint64_t case_index) {
  std::uint64_t z = (static_cast<std::uint64_t>(Catch::rngSeed()) << 32) ^ (case_index + 1);
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace tally::testing

// Names the case in every failure message below it: "rng-seed 20261121 case 7 (seed 0x...)".
#define TALLY_INFO_SEED(case_index)                                                           \
  INFO("rng-seed " << Catch::rngSeed() << " case " << (case_index) << " (seed 0x" << std::hex \
                   << ::tally::testing::CaseSeed(case_index) << std::dec << ")")

#endif  // TALLY_TESTS_CORE_TEST_SEED_H_
