// Shapes whose dims may be static (a number), symbolic (a name such as "batch") or unknown,
// and whose rank may itself be unknown. Shape inference works on these; at run time every
// dim is static.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace kiln {

class Dim {
 public:
  Dim() = default;                                   // unknown
  Dim(int64_t value) : kind_(value >= 0 ? kStatic : kUnknown), value_(value >= 0 ? value : -1) {}  // NOLINT: static dims read like numbers
  // coef x name (coef 0 is the number 0); a dim is "batch" (coef 1) or, say, "12*batch" (the
  // batch x heads of an attention's Reshape).
  static Dim symbol(std::string name, int64_t coef = 1);
  static Dim unknown() { return Dim(); }
  // Any integer, negative ones too: an element of a shape tensor (Reshape's -1), never a dim.
  static Dim integer(int64_t value) { Dim d; d.kind_ = kStatic; d.value_ = value; return d; }

  bool is_static() const { return kind_ == kStatic; }
  bool is_symbolic() const { return kind_ == kSymbolic; }
  bool is_known() const { return kind_ != kUnknown; }  // a number or a named symbol: equality proves
  int64_t value() const { return kind_ == kStatic ? value_ : -1; }  // -1 unless static
  const std::string& symbol_name() const { return symbol_; }
  int64_t coef() const { return kind_ == kSymbolic ? value_ : 0; }
  bool operator==(const Dim& o) const { return kind_ == o.kind_ && value_ == o.value_ && symbol_ == o.symbol_; }
  bool operator!=(const Dim& o) const { return !(*this == o); }
  std::string to_string() const;  // "3", "batch", "12*batch" or "?"

 private:
  enum Kind : uint8_t { kUnknown, kStatic, kSymbolic };
  Kind kind_ = kUnknown;
  int64_t value_ = -1;  // the number (static) or the coefficient (symbolic)
  std::string symbol_;
};

// Dim arithmetic, exact or unknown: a product with at most one symbolic factor, an exact quotient
// (k*s / m, k*s / (m*s)), a sum or difference of numbers; overflow gives unknown.
Dim operator*(const Dim& a, const Dim& b);
Dim exact_div(const Dim& a, const Dim& b);
Dim operator+(const Dim& a, const Dim& b);
Dim operator-(const Dim& a, const Dim& b);

class Shape {
 public:
  Shape() = default;                                          // rank 0 (a scalar)
  Shape(std::vector<Dim> dims) : dims_(std::move(dims)) {}    // NOLINT
  Shape(std::initializer_list<Dim> dims) : dims_(dims) {}
  static Shape from_static(const std::vector<int64_t>& dims);
  static Shape unknown_rank() { Shape s; s.rank_known_ = false; return s; }

  bool rank_known() const { return rank_known_; }
  size_t rank() const { return dims_.size(); }
  const std::vector<Dim>& dims() const { return dims_; }
  std::vector<Dim>& dims() { return dims_; }
  const Dim& operator[](size_t i) const { return dims_[i]; }
  Dim& operator[](size_t i) { return dims_[i]; }
  bool is_static() const;
  // Rank known and every dim a number or a named symbol: equal such shapes are proven equal.
  bool is_known() const;
  // Static dims as numbers; only meaningful when is_static().
  std::vector<int64_t> static_dims() const;
  bool operator==(const Shape& o) const { return rank_known_ == o.rank_known_ && dims_ == o.dims_; }
  std::string to_string() const;  // "[1,3,224,224]", "[batch,?]" or "[*]"

 private:
  std::vector<Dim> dims_;
  bool rank_known_ = true;
};

// Product of dims with an overflow check; the error names `what`.
Expected<int64_t> checked_numel(const std::vector<int64_t>& dims, const std::string& what);
std::string dims_to_string(const std::vector<int64_t>& dims);

}  // namespace kiln
