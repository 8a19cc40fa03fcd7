// Deterministic randomness for the simulator.
//
// Every random choice in a run comes from an Rng seeded, directly or through DeriveSeed, from the
// run's one master seed, so a seed reproduces a run exactly. The generator (SplitMix64) and every
// distribution are written out here instead of taken from <random>, whose distributions differ
// between standard libraries: a seed must mean the same run on every machine.
//
// Not thread-safe; each component of a simulation owns its own Rng.

#ifndef TALLY_SIM_RANDOM_H_
#define TALLY_SIM_RANDOM_H_

#include <cmath>
#include <cstdint>
#include <string_view>

namespace tally::sim {

// One SplitMix64 step: a bijective mixer, also used to spread seeds.
inline std::uint64_t SplitMix64(std::uint64_t* state) {
  std::uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A sub-seed for the component named `label` (and `index`, e.g. a region): independent streams
// per component, so adding a draw in one place does not shift every other component's choices.
inline std::uint64_t DeriveSeed(std::uint64_t master, std::string_view label,
                                std::uint64_t index = 0) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the label
  for (char c : label) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  std::uint64_t state = master ^ h ^ (index * 0xd1b54a32d192ed03ULL);
  SplitMix64(&state);
  return SplitMix64(&state);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : state_(seed) {}

  std::uint64_t Next() { return SplitMix64(&state_); }

  // Uniform in [0, n); n > 0. Multiply-high (Lemire) without the rejection step: the bias is below
  // n / 2^64, far under anything a run can observe.
  std::uint64_t Below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  // Uniform in [lo, hi] (inclusive); lo <= hi.
  std::int64_t Range(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(Below(static_cast<std::uint64_t>(hi - lo) + 1));
  }

  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  bool Chance(double p) { return p > 0 && Unit() < p; }

  // Log-uniform in [lo, hi] (lo > 0): swarm parameters span orders of magnitude.
  double LogUniform(double lo, double hi) { return lo * std::exp(Unit() * std::log(hi / lo)); }

  // Exponentially distributed with the given mean, rounded down; used for arrival gaps.
  std::uint64_t Exponential(double mean) {
    double u = Unit();
    return static_cast<std::uint64_t>(-std::log1p(-u) * mean);
  }

 private:
  std::uint64_t state_;
};

}  // namespace tally::sim

#endif  // TALLY_SIM_RANDOM_H_
