#include "core/shape.h"

namespace kiln {

Dim Dim::symbol(std::string name, int64_t coef) {
  if (coef == 0) return Dim(0);
  Dim d;
  d.kind_ = kSymbolic;
  d.value_ = coef;
  d.symbol_ = std::move(name);
  return d;
}

std::string Dim::to_string() const {
  if (kind_ == kStatic) return std::to_string(value_);
  if (kind_ == kUnknown) return "?";
  return value_ == 1 ? symbol_ : std::to_string(value_) + "*" + symbol_;
}

Dim operator*(const Dim& a, const Dim& b) {
  if (!a.is_known() || !b.is_known() || (a.is_symbolic() && b.is_symbolic())) return Dim::unknown();
  int64_t p = 0;
  const int64_t x = a.is_static() ? a.value() : a.coef(), y = b.is_static() ? b.value() : b.coef();
  if (__builtin_mul_overflow(x, y, &p)) return Dim::unknown();
  if (a.is_symbolic()) return Dim::symbol(a.symbol_name(), p);
  if (b.is_symbolic()) return Dim::symbol(b.symbol_name(), p);
  return Dim::integer(p);
}

Dim exact_div(const Dim& a, const Dim& b) {
  if (!a.is_known() || !b.is_known()) return Dim::unknown();
  const int64_t x = a.is_static() ? a.value() : a.coef(), y = b.is_static() ? b.value() : b.coef();
  if (y == 0 || x % y != 0 || (x == INT64_MIN && y == -1)) return Dim::unknown();
  if (b.is_symbolic()) return a.is_symbolic() && a.symbol_name() == b.symbol_name() ? Dim::integer(x / y) : Dim::unknown();
  return a.is_symbolic() ? Dim::symbol(a.symbol_name(), x / y) : Dim::integer(x / y);
}

Dim operator+(const Dim& a, const Dim& b) {
  int64_t s = 0;
  if (!a.is_static() || !b.is_static() || __builtin_add_overflow(a.value(), b.value(), &s)) return Dim::unknown();
  return Dim::integer(s);
}

Dim operator-(const Dim& a, const Dim& b) {
  int64_t s = 0;
  if (!a.is_static() || !b.is_static() || __builtin_sub_overflow(a.value(), b.value(), &s)) return Dim::unknown();
  return Dim::integer(s);
}

Shape Shape::from_static(const std::vector<int64_t>& dims) {
  std::vector<Dim> d(dims.begin(), dims.end());
  return Shape(std::move(d));
}

bool Shape::is_static() const {
  if (!rank_known_) return false;
  for (const Dim& d : dims_) if (!d.is_static()) return false;
  return true;
}

bool Shape::is_known() const {
  if (!rank_known_) return false;
  for (const Dim& d : dims_) if (!d.is_known()) return false;
  return true;
}

std::vector<int64_t> Shape::static_dims() const {
  std::vector<int64_t> out;
  out.reserve(dims_.size());
  for (const Dim& d : dims_) out.push_back(d.value());
  return out;
}

std::string Shape::to_string() const {
  if (!rank_known_) return "[*]";
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) s += (i ? "," : "") + dims_[i].to_string();
  return s + "]";
}

std::string dims_to_string(const std::vector<int64_t>& dims) { return Shape::from_static(dims).to_string(); }

Expected<int64_t> checked_numel(const std::vector<int64_t>& dims, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return err(what, ": negative dimension in shape ", dims_to_string(dims));
    if (d != 0 && n > INT64_MAX / d)
      return err(what, ": shape ", dims_to_string(dims), " overflows int64 element count");
    n *= d;
  }
  return n;
}

}  // namespace kiln
