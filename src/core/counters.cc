#include "core/counters.h"

#include <algorithm>
#include <cassert>

namespace tally {

Counters::Counters(RegionId regions)
    : n_(regions), p_(regions, 0), d_(regions, 0), t_(std::size_t{regions} * regions, 0) {}

Amount Counters::given(RegionId r) const {
  Amount s = 0;
  for (RegionId to = 0; to < n_; ++to) s += t_[r * n_ + to];
  return s;
}

Amount Counters::received(RegionId r) const {
  Amount s = 0;
  for (RegionId from = 0; from < n_; ++from) s += t_[from * n_ + r];
  return s;
}

Amount Counters::total_credits() const {
  Amount s = 0;
  for (Amount v : p_) s += v;
  return s;
}

Amount Counters::total_debits() const {
  Amount s = 0;
  for (Amount v : d_) s += v;
  return s;
}

// The caps (money.h) bound every sum below far inside int64, so plain arithmetic is exact here.
Amount Counters::balance() const { return total_credits() - total_debits(); }

Amount Counters::rights(RegionId r) const { return p_[r] + received(r) - given(r) - d_[r]; }

namespace {

Status Bump(std::vector<Amount>& v, std::size_t i, Amount x, Amount current_total,
            const char* what) {
  if (x <= 0) return Status::InvalidArgument(std::string(what) + " amount must be positive");
  if (x > kMaxCounter - current_total)
    return Status::ResourceExhausted(std::string(what) + " would take the region's counter past " +
                                     std::to_string(kMaxCounter));
  v[i] += x;
  return Status::OK();
}

}  // namespace

Status Counters::Credit(RegionId r, Amount x, Counters* delta) {
  assert(r < n_);
  Status s = Bump(p_, r, x, p_[r], "credit");
  if (s.ok() && delta) {
    *delta = Counters(n_);
    delta->p_[r] = p_[r];
  }
  return s;
}

Status Counters::Debit(RegionId r, Amount x, Counters* delta) {
  assert(r < n_);
  Status s = Bump(d_, r, x, d_[r], "debit");
  if (s.ok() && delta) {
    *delta = Counters(n_);
    delta->d_[r] = d_[r];
  }
  return s;
}

Status Counters::Transfer(RegionId from, RegionId to, Amount x, Counters* delta) {
  assert(from < n_ && to < n_);
  if (from == to) return Status::FailedPrecondition("a region cannot transfer rights to itself");
  // The cap is on the donor's whole row, which bounds every column sum too.
  Status s = Bump(t_, from * n_ + to, x, given(from), "transfer");
  if (s.ok() && delta) {
    *delta = Counters(n_);
    delta->t_[from * n_ + to] = t_[from * n_ + to];
  }
  return s;
}

void Counters::Join(const Counters& other) {
  if (other.n_ == 0) return;
  if (n_ == 0) {
    *this = other;
    return;
  }
  assert(n_ == other.n_);
  for (std::size_t i = 0; i < p_.size(); ++i) p_[i] = std::max(p_[i], other.p_[i]);
  for (std::size_t i = 0; i < d_.size(); ++i) d_[i] = std::max(d_[i], other.d_[i]);
  for (std::size_t i = 0; i < t_.size(); ++i) t_[i] = std::max(t_[i], other.t_[i]);
}

}  // namespace tally
