// The fault schedule (partitions, clock steps, crashes, amnesia, lost disks) and the liveness
// phase.

#include <algorithm>
#include <numeric>

#include "sim/simulation_internal.h"

namespace tally::sim {
namespace {

// Liveness probes run this often after the heal.
constexpr std::uint64_t kLivenessProbeMs = 100;
// With every op everywhere but different digests for this many probes in a row: a divergence.
constexpr std::uint32_t kDivergedProbes = 10;
// No replica applied anything new for this long while ops were missing: stuck.
constexpr std::uint64_t kNoProgressMs = 15'000;

std::string R(RegionId r) { return "r" + std::to_string(r); }

std::string Signed(std::int64_t ms) {
  std::string sign = ms < 0 ? "-" : "+";
  std::uint64_t a = ms < 0 ? static_cast<std::uint64_t>(-ms) : static_cast<std::uint64_t>(ms);
  if (a >= 3'600'000)
    return sign + std::to_string(a / 3'600'000) + "h" + std::to_string(a / 60'000 % 60) + "m";
  if (a >= 60'000)
    return sign + std::to_string(a / 60'000) + "m" + std::to_string(a / 1000 % 60) + "s";
  return sign + std::to_string(a) + "ms";
}

}  // namespace

std::uint64_t Simulation::Impl::AddFault(FaultAction a) {
  fault_actions.push_back(a);
  return fault_actions.size() - 1;
}

void Simulation::Impl::ScheduleNext(FaultAction::Kind kind, double per_min, Rng* rng) {
  if (per_min <= 0) return;
  std::uint64_t gap = (rng ? *rng : fault_rng).Exponential(60'000.0 / per_min) + 1;
  queue.Schedule(now + gap, EventKind::kFault, 0, AddFault(FaultAction{kind}));
}

void Simulation::Impl::StartFaults() {
  faults_on = true;
  const FaultParams& f = config.faults;
  ScheduleNext(FaultAction::Kind::kNextPartition, f.partitions_per_min);
  ScheduleNext(FaultAction::Kind::kNextStep, f.steps_per_min);
  ScheduleNext(FaultAction::Kind::kNextCrash, f.crashes_per_min);
  ScheduleNext(FaultAction::Kind::kNextAmnesia, f.amnesia_per_min);
  ScheduleNext(FaultAction::Kind::kNextSyncCrash, f.sync_crashes_per_min);
  ScheduleNext(FaultAction::Kind::kNextLyingHello, f.lying_hellos_per_min);
  ScheduleNext(FaultAction::Kind::kNextWipe, f.wipes_per_min, &disk_rng);
  ScheduleNext(FaultAction::Kind::kNextDiskCopy, f.disk_copies_per_min, &disk_rng);
  ScheduleNext(FaultAction::Kind::kNextRestore, f.restores_per_min, &disk_rng);
}

Partition Simulation::Impl::DrawPartition() {
  const FaultParams& f = config.faults;
  const RegionId n = config.regions;
  std::vector<int> kinds;
  if (f.symmetric) kinds.push_back(0);
  if (f.asymmetric) kinds.push_back(1);
  if (f.partial && n >= 3) kinds.push_back(2);
  if (f.isolate) kinds.push_back(3);
  if (f.split && n >= 3) kinds.push_back(4);
  if (kinds.empty()) kinds.push_back(3);
  Partition p;
  auto both = [&](RegionId a, RegionId b) {
    p.cut.emplace_back(a, b);
    p.cut.emplace_back(b, a);
  };
  RegionId a = static_cast<RegionId>(fault_rng.Below(n));
  RegionId b = static_cast<RegionId>(fault_rng.Below(n - 1));
  if (b >= a) ++b;
  switch (kinds[fault_rng.Below(kinds.size())]) {
    case 0:
      p.kind = "symmetric";
      both(a, b);
      p.description = R(a) + " ⟂ " + R(b);
      break;
    case 1:
      // A hears B, B does not hear A.
      p.kind = "asymmetric";
      p.cut.emplace_back(a, b);
      p.description = R(a) + " → " + R(b) + " cut (one way)";
      break;
    case 2:
      // A reaches only B; everyone else reaches A only through B's relays.
      p.kind = "partial";
      for (RegionId c = 0; c < n; ++c)
        if (c != a && c != b) both(a, c);
      p.description = R(a) + " reaches only " + R(b);
      break;
    case 3:
      p.kind = "isolate";
      for (RegionId c = 0; c < n; ++c)
        if (c != a) both(a, c);
      p.description = R(a) + " isolated";
      break;
    case 4: {
      p.kind = "split";
      std::vector<bool> side(n);
      for (RegionId c = 0; c < n; ++c) side[c] = fault_rng.Chance(0.5);
      side[a] = true;
      side[b] = false;
      std::string left, right;
      for (RegionId c = 0; c < n; ++c) {
        std::string& names = side[c] ? left : right;
        names += names.empty() ? R(c) : "," + R(c);
        for (RegionId d = c + 1; d < n; ++d)
          if (side[c] != side[d]) both(c, d);
      }
      p.description = "{" + left + "} | {" + right + "}";
      break;
    }
  }
  return p;
}

void Simulation::Impl::OnFault(std::uint64_t index) {
  const FaultAction a = fault_actions[index];
  const FaultParams& f = config.faults;
  const RegionId n = config.regions;
  trace.Add(0x46u);
  trace.Add(now);
  trace.Add(static_cast<std::uint64_t>(a.kind));
  switch (a.kind) {
    case FaultAction::Kind::kNextPartition: {
      if (!faults_on) return;
      Partition p = DrawPartition();
      ++summary.partitions;
      std::uint64_t duration =
          static_cast<std::uint64_t>(fault_rng.Range(f.partition_min_ms, f.partition_max_ms));
      ActivePartition ap{p, true, timeline.size()};
      timeline.push_back(
          report::TimelineSpan{now, now + duration, "network", "partition", p.description});
      Cut(p);
      partitions.push_back(std::move(ap));
      FaultAction end{FaultAction::Kind::kPartitionEnd};
      end.partition = partitions.size() - 1;
      queue.Schedule(now + duration, EventKind::kFault, 0, AddFault(end));
      ScheduleNext(FaultAction::Kind::kNextPartition, f.partitions_per_min);
      break;
    }
    case FaultAction::Kind::kPartitionEnd: {
      ActivePartition& ap = partitions[a.partition];
      if (!ap.active) return;
      ap.active = false;
      timeline[ap.span].end_ms = now;
      Uncut(ap.p);
      break;
    }
    case FaultAction::Kind::kNextStep: {
      if (!faults_on) return;
      RegionId r = static_cast<RegionId>(fault_rng.Below(n));
      std::int64_t delta =
          fault_rng.Range(f.step_min_ms, f.step_max_ms) * (fault_rng.Chance(0.5) ? 1 : -1);
      hosts[r].clock.Step(delta);
      ++summary.clock_steps;
      timeline.push_back(
          report::TimelineSpan{now, now, R(r), "clock-step", R(r) + " clock " + Signed(delta)});
      ScheduleNext(FaultAction::Kind::kNextStep, f.steps_per_min);
      break;
    }
    case FaultAction::Kind::kNextCrash:
    case FaultAction::Kind::kCrash: {
      if (!faults_on) return;
      RegionId r = a.kind == FaultAction::Kind::kCrash ? a.region
                                                       : static_cast<RegionId>(fault_rng.Below(n));
      if (hosts[r].up && !in_amnesia[r]) {
        Crash(r);
        FaultAction restart{FaultAction::Kind::kRestart};
        restart.region = r;
        queue.Schedule(
            now + static_cast<std::uint64_t>(fault_rng.Range(f.downtime_min_ms, f.downtime_max_ms)),
            EventKind::kFault, 0, AddFault(restart));
      }
      if (a.kind == FaultAction::Kind::kNextCrash)
        ScheduleNext(FaultAction::Kind::kNextCrash, f.crashes_per_min);
      break;
    }
    case FaultAction::Kind::kNextSyncCrash:
      if (!faults_on) return;
      armed_sync_crash[fault_rng.Below(n)] = true;
      ScheduleNext(FaultAction::Kind::kNextSyncCrash, f.sync_crashes_per_min);
      break;
    case FaultAction::Kind::kRestart:
      if (!hosts[a.region].up && !in_amnesia[a.region]) Restart(a.region);
      break;
    case FaultAction::Kind::kNextLyingHello: {
      if (!faults_on) return;
      // A Hello in peer p's name that claims p holds 2^40 ops of every origin: believed, it would
      // stop r from ever sending p anything again. Replicas cap claims at what they hold and let
      // the next honest ack replace it; the liveness phase checks that p still gets everything.
      if (n >= 2) {
        const RegionId r = static_cast<RegionId>(fault_rng.Below(n));
        const RegionId p = static_cast<RegionId>((r + 1 + fault_rng.Below(n - 1)) % n);
        if (hosts[r].up) {
          ++summary.lying_hellos;
          trace.Add(0x4cu);
          trace.Add(now);
          trace.Add((std::uint64_t{p} << 8) | r);
          VersionVector huge;
          for (RegionId o = 0; o < n; ++o) huge.set(o, Seq{1} << 40);
          Effects e;
          hosts[r].replica->OnMessage(p, Hello{"sim", kProtocolVersion, p, huge}, Mono(), &e);
          Absorb(r, &e);
          timeline.push_back(report::TimelineSpan{
              now, now, R(r), "lying-hello",
              R(r) + " hears a Hello in " + R(p) + "'s name claiming 2^40 of every origin"});
        }
      }
      ScheduleNext(FaultAction::Kind::kNextLyingHello, f.lying_hellos_per_min);
      break;
    }
    case FaultAction::Kind::kNextWipe:
    case FaultAction::Kind::kNextDiskCopy:
    case FaultAction::Kind::kNextRestore:
      if (!faults_on) return;
      OnDiskFault(a);
      break;
    case FaultAction::Kind::kNextAmnesia: {
      if (!faults_on) return;
      // Cut a region off, set its clock back by hours, crash it and bring it back while it still
      // hears nobody: only its own persisted high-water mark keeps its HLC from going back.
      RegionId r = static_cast<RegionId>(fault_rng.Below(n));
      if (hosts[r].up && !in_amnesia[r]) {
        in_amnesia[r] = true;
        ++summary.amnesias;
        Partition p;
        p.kind = "isolate";
        for (RegionId c = 0; c < n; ++c)
          if (c != r) {
            p.cut.emplace_back(r, c);
            p.cut.emplace_back(c, r);
          }
        std::int64_t back = fault_rng.Range(3'600'000, 3 * 3'600'000);
        p.description = R(r) + " amnesia: isolated, clock " + Signed(-back) + ", crash, restart";
        FaultAction next{FaultAction::Kind::kAmnesiaCrash};
        next.region = r;
        next.span = timeline.size();
        timeline.push_back(report::TimelineSpan{now, now, R(r), "amnesia", p.description});
        Cut(p);
        partitions.push_back(ActivePartition{std::move(p), true, SIZE_MAX});
        next.partition = partitions.size() - 1;
        hosts[r].clock.Step(-back);
        ++summary.clock_steps;
        queue.Schedule(now + static_cast<std::uint64_t>(fault_rng.Range(100, 1500)),
                       EventKind::kFault, 0, AddFault(next));
      }
      ScheduleNext(FaultAction::Kind::kNextAmnesia, f.amnesia_per_min);
      break;
    }
    case FaultAction::Kind::kAmnesiaCrash: {
      if (!faults_on) return;
      if (hosts[a.region].up) Crash(a.region);
      FaultAction next = a;
      next.kind = FaultAction::Kind::kAmnesiaRestart;
      queue.Schedule(now + static_cast<std::uint64_t>(fault_rng.Range(20, 500)), EventKind::kFault,
                     0, AddFault(next));
      break;
    }
    case FaultAction::Kind::kAmnesiaRestart: {
      if (!hosts[a.region].up) Restart(a.region);
      FaultAction next = a;
      next.kind = FaultAction::Kind::kAmnesiaEnd;
      queue.Schedule(now + static_cast<std::uint64_t>(fault_rng.Range(200, 3000)),
                     EventKind::kFault, 0, AddFault(next));
      break;
    }
    case FaultAction::Kind::kAmnesiaEnd: {
      in_amnesia[a.region] = false;
      if (a.span < timeline.size()) timeline[a.span].end_ms = now;
      ActivePartition& ap = partitions[a.partition];
      if (ap.active) {
        ap.active = false;
        Uncut(ap.p);
      }
      break;
    }
  }
}

// Lost disks. A wipe or a restore hits a region that is up (it crashes, and comes back after a
// downtime drawn as for crashes) or one that is down (it comes back as already planned), never one
// in an amnesia episode. Every draw comes from disk_rng, so that switching these faults on leaves
// the other faults of a seed where they were.
void Simulation::Impl::OnDiskFault(const FaultAction& a) {
  const FaultParams& f = config.faults;
  const RegionId n = config.regions;
  auto down_for_a_while = [&](RegionId r) {
    FaultAction restart{FaultAction::Kind::kRestart};
    restart.region = r;
    queue.Schedule(
        now + static_cast<std::uint64_t>(disk_rng.Range(f.downtime_min_ms, f.downtime_max_ms)),
        EventKind::kFault, 0, AddFault(restart));
  };
  switch (a.kind) {
    case FaultAction::Kind::kNextWipe: {
      const RegionId r = static_cast<RegionId>(disk_rng.Below(n));
      if (!in_amnesia[r] && !AnotherDiskBehind(r)) {
        const bool was_up = hosts[r].up;
        ReplaceDisk(r, nullptr);
        if (was_up) down_for_a_while(r);
      }
      ScheduleNext(FaultAction::Kind::kNextWipe, f.wipes_per_min, &disk_rng);
      break;
    }
    case FaultAction::Kind::kNextDiskCopy:
      CopyDisk(static_cast<RegionId>(disk_rng.Below(n)));
      ScheduleNext(FaultAction::Kind::kNextDiskCopy, f.disk_copies_per_min, &disk_rng);
      break;
    case FaultAction::Kind::kNextRestore: {
      std::vector<RegionId> with_copies;
      for (RegionId r = 0; r < n; ++r)
        if (!hosts[r].disk_copies.empty() && !in_amnesia[r] && !AnotherDiskBehind(r))
          with_copies.push_back(r);
      if (!with_copies.empty()) {
        const RegionId r = with_copies[disk_rng.Below(with_copies.size())];
        const Host::DiskCopy c = hosts[r].disk_copies[disk_rng.Below(hosts[r].disk_copies.size())];
        const bool was_up = hosts[r].up;
        ReplaceDisk(r, &c);
        if (was_up) down_for_a_while(r);
      }
      ScheduleNext(FaultAction::Kind::kNextRestore, f.restores_per_min, &disk_rng);
      break;
    }
    default:
      break;
  }
}

// The fault model loses one disk at a time: a region's disk is wiped or restored only while every
// other region's is whole (no other region has a replaced disk that no run has rejoined on
// since). Two regions that lost their disks together may together have forgotten everything of
// a run of each, its epoch included; no protocol can recover what no region holds, and a replica
// resuming under a lower epoch than an earlier run's would let that run's messages in flight pass
// for its newer ones (docs/simulation.md, "Disk faults").
bool Simulation::Impl::AnotherDiskBehind(RegionId r) const {
  for (const Host& h : hosts)
    if (h.id != r && h.disk_behind) return true;
  return false;
}

// Wipes region r's disk (copy == nullptr) or puts back an earlier copy of it.
void Simulation::Impl::ReplaceDisk(RegionId r, const Host::DiskCopy* copy) {
  Host& h = hosts[r];
  if (h.up) Crash(r);
  h.store.ReplaceDisk(copy ? copy->state : SimStore::Durable{});
  statements.Forget(r);  // its lines are gone, or as old as the copy
  knows[r] = copy ? copy->knows : std::vector<Hlc>(config.regions);
  ++(copy ? summary.restores : summary.wipes);
  const std::string what =
      copy ? "restored from the copy of " + std::to_string(copy->taken_ms) + " ms" : "disk wiped";
  h.disk_behind = true;
  h.disk_epoch_max = 0;  // a new disk remembers no epoch of the runs before
  h.disk_replaced_ms = now;
  trace.Add(0x57u);
  trace.Add(now);
  trace.Add(r);
  trace.Add(what);
  if (h.timeline_crash < timeline.size()) timeline[h.timeline_crash].label += " (" + what + ")";
  ReleaseLostCopies();
}

// A copy of the region's durable state, as a backup would take it (up or down, it does not matter:
// only what is synced is on the disk). The oldest copy goes when there are too many.
void Simulation::Impl::CopyDisk(RegionId r) {
  Host& h = hosts[r];
  trace.Add(0x4bu);
  trace.Add(now);
  trace.Add(r);
  ++summary.disk_copies;
  if (h.disk_copies.size() == kMaxDiskCopies) h.disk_copies.pop_front();
  h.disk_copies.push_back(Host::DiskCopy{now, h.store.durable(), knows[r]});
}

// A sync crash was armed for this region: aim it between this write and its sync.
void Simulation::Impl::MaybeCrashInSync(RegionId r, std::uint64_t sync_delay_ms) {
  if (!faults_on || !armed_sync_crash[r] || sync_delay_ms == 0 || in_amnesia[r]) return;
  armed_sync_crash[r] = false;
  FaultAction crash{FaultAction::Kind::kCrash};
  crash.region = r;
  // Strictly before the sync completes: whatever was written since the last sync is lost.
  queue.Schedule(now + fault_rng.Below(sync_delay_ms), EventKind::kFault, 0, AddFault(crash));
}

void Simulation::Impl::BeginLiveness(const Partition* left_down) {
  if (liveness) return;
  liveness = true;
  faults_on = false;
  if (!summary.workload_end_ms) summary.workload_end_ms = now;
  heal_ms = now;
  summary.heal_ms = now;
  for (ActivePartition& ap : partitions) {
    if (!ap.active) continue;
    ap.active = false;
    if (ap.span < timeline.size()) timeline[ap.span].end_ms = now;
  }
  for (RegionId r = 0; r < config.regions; ++r) {
    if (in_amnesia[r]) {
      for (report::TimelineSpan& s : timeline)
        if (s.kind == "amnesia" && s.lane == R(r) && s.end_ms == s.start_ms) s.end_ms = now;
    }
    in_amnesia[r] = false;
  }
  ScheduleReconnects(network.HealAll());

  // The network is quiet from now on: no loss, no overflow (delays, duplicates and reordering
  // stay).
  LinkParams quiet = config.faults.link;
  quiet.loss = 0;
  quiet.capacity = std::max<std::uint32_t>(quiet.capacity, 4096);
  network.SetParams(quiet);

  const RegionId n = config.regions;
  bool partial = !left_down && n >= 3 &&
                 (config.final_topology == FinalTopology::kPartial ||
                  (config.final_topology == FinalTopology::kRandom &&
                   fault_rng.Chance(config.faults.final_partial_p)));
  summary.final_topology = "complete";
  if (left_down) {
    Partition p = *left_down;
    p.kind = "final";
    summary.final_topology = "partial (" + p.description + " down)";
    final_cut = p.cut;
    timeline.push_back(report::TimelineSpan{now, now, "network", "final",
                                            "final heal leaves " + p.description + " down"});
    Cut(p);
  } else if (partial) {
    // Connected but not complete: a random line, plus some chords, with at least one pair that
    // can talk only through relays.
    std::vector<RegionId> order(n);
    std::iota(order.begin(), order.end(), 0);
    for (RegionId i = n - 1; i > 0; --i) std::swap(order[i], order[fault_rng.Below(i + 1)]);
    std::vector<std::vector<bool>> link(n, std::vector<bool>(n, false));
    for (RegionId i = 0; i + 1 < n; ++i)
      link[order[i]][order[i + 1]] = link[order[i + 1]][order[i]] = true;
    for (RegionId x = 0; x < n; ++x)
      for (RegionId y = x + 1; y < n; ++y)
        if (!link[x][y] && fault_rng.Chance(0.3)) link[x][y] = link[y][x] = true;
    link[order[0]][order[n - 1]] = link[order[n - 1]][order[0]] = false;
    Partition p;
    p.kind = "final";
    std::string down;
    for (RegionId x = 0; x < n; ++x)
      for (RegionId y = x + 1; y < n; ++y)
        if (!link[x][y]) {
          p.cut.emplace_back(x, y);
          p.cut.emplace_back(y, x);
          down += (down.empty() ? "" : ", ") + R(x) + "⟂" + R(y);
        }
    p.description = "final heal leaves " + down + " down";
    summary.final_topology = "partial (" + down + " down)";
    final_cut = p.cut;
    timeline.push_back(report::TimelineSpan{now, now, "network", "final", p.description});
    Cut(p);
  }
  for (RegionId r = 0; r < n; ++r)
    if (!hosts[r].up) Restart(r);
  last_progress_ms = now;
  queue.Schedule(now + kLivenessProbeMs, EventKind::kLivenessCheck);
}

void Simulation::Impl::OnLivenessCheck() {
  if (finished || failure) return;
  if (converged_ms) {
    // Finality: once the cluster is whole and quiet, every replica's stable frontier must pass the
    // newest op, so that every op becomes final (heartbeats, confirmations and folds keep going).
    bool final_everywhere = true;
    for (const Host& h : hosts)
      final_everywhere = final_everywhere && h.replica->frontier() > finality_target;
    if (final_everywhere) {
      summary.finality_ms = now - heal_ms;
      finished = true;
      return;
    }
    if (now - heal_ms > config.liveness_bound_ms) {
      std::string s;
      for (const Host& h : hosts)
        if (!(h.replica->frontier() > finality_target))
          s += " " + R(h.id) + "'s frontier is " + h.replica->frontier().ToString() + ";";
      Fail("finality", "the newest op (" + finality_target.ToString() +
                           ") is not final everywhere " + std::to_string(config.liveness_bound_ms) +
                           " ms after the heal:" + s);
      finished = true;
      return;
    }
    queue.Schedule(now + kLivenessProbeMs, EventKind::kLivenessCheck);
    return;
  }
  const VersionVector& durable = ledger.durable();
  const RegionId n = config.regions;
  bool ops_everywhere = true, quiet = true;
  std::uint64_t mark = 0;
  for (const Host& h : hosts) {
    if (!h.up) {
      ops_everywhere = false;
      continue;
    }
    const VersionVector& applied = h.replica->applied();
    for (RegionId o = 0; o < n; ++o) {
      mark += applied.get(o);
      if (applied.get(o) != durable.get(o)) ops_everywhere = false;
    }
    if (h.gate->in_flight() > 0 || h.gate->has_open_batch()) quiet = false;
  }
  if (mark != progress_mark) {
    progress_mark = mark;
    last_progress_ms = now;
  }
  // Every durable op applied everywhere and the same state digest everywhere: converged. (Writes
  // may still be in flight — folds move the frontier on every heartbeat — without changing state.)
  if (ops_everywhere) {
    std::uint64_t d0 = hosts[0].replica->StateDigest();
    bool same = true;
    for (RegionId r = 1; r < n; ++r) same = same && hosts[r].replica->StateDigest() == d0;
    if (same) {
      converged_ms = now;
      summary.convergence_ms = now - heal_ms;
      FinalChecks();
      if (failure) {
        finished = true;
        return;
      }
      finality_target = ledger.newest();
      queue.Schedule(now + kLivenessProbeMs, EventKind::kLivenessCheck);
      return;
    }
    if (++diverged_checks >= kDivergedProbes) {
      // Same ops everywhere, different state: let the final checks say where.
      FinalChecks();
      if (!failure)
        Fail("I1 convergence", "every replica holds the same ops but the state digests differ");
      finished = true;
      return;
    }
  } else {
    diverged_checks = 0;
  }
  auto lacking = [&]() {
    std::string s;
    for (const Host& h : hosts) {
      if (!h.up) {
        s += " " + R(h.id) + " is down;";
        continue;
      }
      const VersionVector& applied = h.replica->applied();
      for (RegionId o = 0; o < n; ++o) {
        if (applied.get(o) == durable.get(o)) continue;
        s += " " + R(h.id) + " applied " + R(o) + " up to " + std::to_string(applied.get(o)) +
             " of " + std::to_string(durable.get(o));
        // The next op it needs may be in no region's log any more — folded into checkpoints
        // where it was held: only a snapshot can bring it (docs/design.md, "Left out").
        const Dot next{o, applied.get(o) + 1};
        bool retained = false;
        for (const Host& p : hosts) {
          const bool holds =
              p.store.Extent(o) >= next.seq || (p.up && p.replica->applied().get(o) >= next.seq);
          if (p.id != h.id && holds && p.store.log_floor().get(o) < next.seq) retained = true;
        }
        if (!retained)
          s += " (" + next.ToString() + " is pruned wherever it is held: needs a snapshot)";
        s += ";";
      }
      if (h.replica->rejoining())
        s += " " + R(h.id) + " is still rejoining (" + h.replica->rejoin_reason() + ");";
    }
    if (!quiet) s += " some region still has unsynced writes;";
    return s;
  };
  if (now - heal_ms > config.liveness_bound_ms) {
    Fail("I1 convergence", "not converged " + std::to_string(config.liveness_bound_ms) +
                               " ms after the heal (" + summary.final_topology + "):" + lacking());
    finished = true;
    return;
  }
  if (!ops_everywhere && now - last_progress_ms > kNoProgressMs) {
    Fail("I1 convergence", "no replica applied anything for " + std::to_string(kNoProgressMs) +
                               " ms while ops are missing (" + summary.final_topology +
                               "):" + lacking());
    finished = true;
    return;
  }
  queue.Schedule(now + kLivenessProbeMs, EventKind::kLivenessCheck);
}

}  // namespace tally::sim
