#include "core/shape.h"

namespace kiln {

std::string Dim::to_string() const {
  if (is_static()) return std::to_string(value_);
  return symbol_.empty() ? "?" : symbol_;
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
