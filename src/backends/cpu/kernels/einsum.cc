// CPU kernels for Einsum and Det (matmul family). Einsum is one general contraction loop
// over every label (repeated labels within an operand read its diagonal); clarity over speed.
#include <cmath>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "ir/ops/einsum_equation.h"

namespace kiln::cpu {

namespace {

Status einsum(KernelContext& ctx) {
  std::vector<std::vector<int64_t>> dims;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) dims.push_back(ctx.input(i).dims());
  auto spec = parse_einsum(ctx.node().attr_string("equation", ""), dims);
  if (!spec) return ctx.fail(spec.status().message());
  // Loop order: output labels first, then the summed-over labels.
  std::vector<int> labels = spec->output;
  for (const auto& [l, size] : spec->sizes)
    if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
  const size_t nl = labels.size();
  std::vector<int64_t> extent(nl);
  for (size_t j = 0; j < nl; ++j) extent[j] = spec->sizes.at(labels[j]);
  // Stride of every label in every operand (summed for repeated labels; 0 if broadcast).
  std::vector<std::vector<int64_t>> stride(ctx.num_inputs(), std::vector<int64_t>(nl, 0));
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    std::vector<int64_t> own = strides_of(dims[i]);
    for (size_t a = 0; a < dims[i].size(); ++a) {
      size_t j = std::find(labels.begin(), labels.end(), spec->inputs[i][a]) - labels.begin();
      if (dims[i][a] != 1) stride[i][j] += own[a];
    }
  }
  std::vector<int64_t> out_stride(nl, 0);
  std::vector<int64_t> od = strides_of(ctx.output(0).dims());
  for (size_t j = 0; j < spec->output.size(); ++j) out_stride[j] = od[j];
  Tensor& y = ctx.output(0);
  for (int64_t e : extent) if (e == 0) return Status::ok();
  std::vector<double> acc(static_cast<size_t>(y.numel()), 0.0);
  std::vector<int64_t> idx(nl, 0), off(ctx.num_inputs(), 0);
  int64_t yo = 0;
  while (true) {
    double p = 1;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) p *= ctx.input(i).get_as_double(off[i]);
    acc[yo] += p;
    size_t j = nl;
    while (j-- > 0) {
      if (++idx[j] < extent[j]) {
        for (size_t i = 0; i < off.size(); ++i) off[i] += stride[i][j];
        yo += out_stride[j];
        break;
      }
      for (size_t i = 0; i < off.size(); ++i) off[i] -= stride[i][j] * (extent[j] - 1);
      yo -= out_stride[j] * (extent[j] - 1);
      idx[j] = 0;
    }
    if (j == size_t(-1)) break;
  }
  return visit_dtype(y.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = static_cast<T>(static_cast<compute_t<T>>(acc[i]));
  });
}

// Determinant by LU decomposition with partial pivoting, in double.
double determinant(std::vector<double> a, int64_t n) {
  double det = 1;
  for (int64_t c = 0; c < n; ++c) {
    int64_t piv = c;
    for (int64_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r * n + c]) > std::fabs(a[piv * n + c])) piv = r;
    if (a[piv * n + c] == 0) return 0;
    if (piv != c) {
      for (int64_t k = 0; k < n; ++k) std::swap(a[c * n + k], a[piv * n + k]);
      det = -det;
    }
    det *= a[c * n + c];
    for (int64_t r = c + 1; r < n; ++r) {
      double f = a[r * n + c] / a[c * n + c];
      for (int64_t k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
    }
  }
  return det;
}

Status det(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t n = x.dim(x.rank() - 1);
  return visit_dtype(x.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* py = y.mutable_data<T>();
    for (int64_t b = 0; b < y.numel(); ++b) {
      std::vector<double> m(static_cast<size_t>(n * n));
      for (int64_t i = 0; i < n * n; ++i) m[i] = x.get_as_double(b * n * n + i);
      py[b] = static_cast<T>(static_cast<compute_t<T>>(determinant(std::move(m), n)));
    }
  });
}

}  // namespace

void register_einsum_kernels(KernelTable& t) {
  t.add("", "Einsum", einsum);
  t.add("", "Det", det);
}

}  // namespace kiln::cpu
