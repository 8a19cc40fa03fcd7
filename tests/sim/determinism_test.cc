// I5: a seed and its flags fix the run. The same seed gives the same trace hash and the same
// summary byte for byte; different seeds give different runs; watching (the report's sampling)
// does not change what happens.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/config.h"
#include "sim/simulation.h"
#include "sim/swarm.h"

namespace tally::sim {
namespace {

RunResult RunSeed(std::uint64_t seed, const std::string& profile,
                  const std::string& report_dir = "") {
  SimConfig c;
  c.seed = seed;
  c.ops = 1500;
  c.profile = profile;
  c.report_dir = report_dir;
  REQUIRE(ApplyProfile(&c).ok());
  Simulation sim(c);
  return sim.Run();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("Same seed, same trace and summary - different seeds, different traces", "[sim]") {
  for (const char* profile : {"default", "heavy"}) {
    RunResult a = RunSeed(11, profile);
    RunResult b = RunSeed(11, profile);
    INFO(profile << ": " << a.failure.invariant << " " << a.failure.message);
    REQUIRE(a.ok);
    REQUIRE(a.trace == b.trace);
    SimConfig c;
    c.seed = 11;
    c.ops = 1500;
    c.profile = profile;
    REQUIRE(FormatSummary(c, a) == FormatSummary(c, b));
    RunResult other = RunSeed(12, profile);
    REQUIRE(other.trace != a.trace);
  }
}

TEST_CASE("The report is byte-identical across runs and sampling does not change the run",
          "[sim]") {
  namespace fs = std::filesystem;
  const fs::path base = fs::temp_directory_path() / "tally-sim-determinism-test";
  fs::remove_all(base);
  RunResult plain = RunSeed(21, "default");
  RunResult a = RunSeed(21, "default", (base / "a").string());
  RunResult b = RunSeed(21, "default", (base / "b").string());
  REQUIRE(plain.trace == a.trace);
  REQUIRE(a.trace == b.trace);
  const std::string json = Slurp((base / "a" / "report.json").string());
  const std::string html = Slurp((base / "a" / "report.html").string());
  REQUIRE(json.size() > 1000);
  REQUIRE(html.find("<svg") != std::string::npos);
  REQUIRE(html.find("http://") == std::string::npos);  // self-contained: nothing fetched
  REQUIRE(html.find("https://") == std::string::npos);
  REQUIRE(json == Slurp((base / "b" / "report.json").string()));
  REQUIRE(html == Slurp((base / "b" / "report.html").string()));
  fs::remove_all(base);
}

TEST_CASE("A swarm seed's result does not depend on the number of worker threads", "[sim]") {
  auto one = RunSwarm(40, 4, 1000, 1);
  auto two = RunSwarm(40, 4, 1000, 2);
  REQUIRE(one.size() == 4);
  for (std::size_t i = 0; i < one.size(); ++i) {
    INFO("seed " << one[i].seed << ": " << one[i].invariant << " " << one[i].message);
    REQUIRE(one[i].ok);
    REQUIRE(one[i].seed == two[i].seed);
    REQUIRE(one[i].trace == two[i].trace);
  }
}

}  // namespace
}  // namespace tally::sim
