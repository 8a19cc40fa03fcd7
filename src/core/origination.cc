#include "core/origination.h"

namespace tally {

Op NewOwnOp(OpKind kind, const std::string& account, const ReplicaPhase& phase, RegionId self,
            const OpLog& log, HybridClock& clock, const WallClock& wall) {
  Op op;
  op.dot = Dot{self, log.applied().get(self) + 1};
  op.epoch = phase.epoch;
  op.hlc = clock.Now(wall.NowMs());
  op.kind = kind;
  op.account = account;
  return op;
}

Status ApplyOp(const Op& op, bool write_keys, AccountBook* book, OpLog* log, Effects* out) {
  Status s = book->Apply(op, write_keys, out);
  if (!s.ok()) return s;
  log->Append(op);
  if (out) out->ops.push_back(op);
  return Status::OK();
}

}  // namespace tally
