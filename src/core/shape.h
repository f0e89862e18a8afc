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
  Dim(int64_t value) : value_(value) {}              // NOLINT: static dims read like numbers
  static Dim symbol(std::string name) { Dim d; d.symbol_ = std::move(name); return d; }
  static Dim unknown() { return Dim(); }

  bool is_static() const { return value_ >= 0; }
  bool is_symbolic() const { return value_ < 0 && !symbol_.empty(); }
  int64_t value() const { return value_; }           // -1 unless static
  const std::string& symbol_name() const { return symbol_; }
  bool operator==(const Dim& o) const { return value_ == o.value_ && symbol_ == o.symbol_; }
  bool operator!=(const Dim& o) const { return !(*this == o); }
  std::string to_string() const;  // "3", "batch" or "?"

 private:
  int64_t value_ = -1;
  std::string symbol_;
};

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
