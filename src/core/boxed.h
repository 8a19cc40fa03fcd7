// Boxed<T>: a value of T kept out of line, absent until set, and read as a default T while absent.
// For the fields of a plain value type that are large and nearly always empty — an Op's account
// config, set only on the rare open — so that every other copy of the value moves eight bytes for
// them, not the whole T. Copies are deep: a Boxed is a value, never shared.
//
// Not thread-safe (as a value: distinct Boxed objects may be used from distinct threads).

#ifndef TALLY_CORE_BOXED_H_
#define TALLY_CORE_BOXED_H_

#include <memory>
#include <utility>

namespace tally {

template <class T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(const T& v) : p_(std::make_unique<T>(v)) {}        // NOLINT: a T converts
  Boxed(T&& v) : p_(std::make_unique<T>(std::move(v))) {}  // NOLINT: a T converts
  Boxed(const Boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(const T& v) {
    p_ = std::make_unique<T>(v);
    return *this;
  }
  Boxed& operator=(T&& v) {
    p_ = std::make_unique<T>(std::move(v));
    return *this;
  }

  const T& get() const { return p_ ? *p_ : Default(); }
  const T& operator*() const { return get(); }
  const T* operator->() const { return &get(); }
  // The value to change in place (made, as a default T, if absent).
  T& mutable_value() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }
  // An absent value equals a default T: equality is of values, not of boxes.
  bool operator==(const Boxed& o) const { return get() == o.get(); }
  bool operator==(const T& v) const { return get() == v; }

 private:
  static const T& Default() {
    static const T empty;  // initialised once, thread-safe; never changed
    return empty;
  }
  std::unique_ptr<T> p_;
};

}  // namespace tally

#endif  // TALLY_CORE_BOXED_H_
