// Float tensors as double buffers, for the normalization and loss kernels: they read their
// inputs once into double, compute there (the reference accumulates in double), and write the
// result back in the output's element type.
#pragma once
#include <vector>

#include "ir/tensor.h"

namespace kiln::cpu {

// All elements of a float tensor as double; fails for non-float types.
inline Expected<std::vector<double>> to_doubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  Status s = visit_dtype(t.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(static_cast<compute_t<T>>(p[i]));
  });
  if (!s) return s;
  return out;
}

// Writes `v` into the float tensor `t` (same element count), rounding to its type.
inline Status from_doubles(Tensor& t, const std::vector<double>& v) {
  if (static_cast<int64_t>(v.size()) != t.numel()) return err("internal: ", t.describe(), " vs ", v.size(), " values");
  return visit_dtype(t.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(static_cast<compute_t<T>>(v[i]));
  });
}

}  // namespace kiln::cpu
