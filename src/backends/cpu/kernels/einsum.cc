// CPU kernels for Einsum and Det (matmul family). Einsum runs two-operand contractions that
// are plain batched matmuls through the GEMM, everything else (diagonals, broadcasting, sums
// over one operand, 3+ operands) through one general loop over every label.
#include <cmath>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/gemm.h"
#include "ir/ops/einsum_equation.h"

namespace kiln::cpu {

namespace {

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  (void)visit_dtype(t.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<double>(static_cast<compute_t<T>>(p[i]));
  });
  return out;
}

// The general contraction: one odometer over every label, output labels first.
std::vector<double> contract_loop(const EinsumSpec& spec, const std::vector<std::vector<double>>& in,
                                  const std::vector<std::vector<int64_t>>& dims, const std::vector<int64_t>& out_dims) {
  std::vector<int> labels = spec.output;
  for (const auto& [l, size] : spec.sizes)
    if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
  const size_t nl = labels.size(), ni = in.size();
  std::vector<int64_t> extent(nl);
  for (size_t j = 0; j < nl; ++j) extent[j] = spec.sizes.at(labels[j]);
  // Stride of every label in every operand (summed for repeated labels; 0 if broadcast).
  std::vector<std::vector<int64_t>> stride(ni, std::vector<int64_t>(nl, 0));
  for (size_t i = 0; i < ni; ++i) {
    std::vector<int64_t> own = strides_of(dims[i]);
    for (size_t a = 0; a < dims[i].size(); ++a) {
      size_t j = std::find(labels.begin(), labels.end(), spec.inputs[i][a]) - labels.begin();
      if (dims[i][a] != 1) stride[i][j] += own[a];
    }
  }
  std::vector<int64_t> out_stride(nl, 0), od = strides_of(out_dims);
  for (size_t j = 0; j < spec.output.size(); ++j) out_stride[j] = od[j];
  int64_t total = 1;
  for (int64_t d : out_dims) total *= d;
  std::vector<double> acc(static_cast<size_t>(total), 0.0);
  for (int64_t e : extent) if (e == 0) return acc;
  std::vector<int64_t> idx(nl, 0), off(ni, 0);
  int64_t yo = 0;
  while (true) {
    double p = 1;
    for (size_t i = 0; i < ni; ++i) p *= in[i][off[i]];
    acc[yo] += p;
    size_t j = nl;
    while (j-- > 0) {
      if (++idx[j] < extent[j]) {
        for (size_t i = 0; i < ni; ++i) off[i] += stride[i][j];
        yo += out_stride[j];
        break;
      }
      for (size_t i = 0; i < ni; ++i) off[i] -= stride[i][j] * (extent[j] - 1);
      yo -= out_stride[j] * (extent[j] - 1);
      idx[j] = 0;
    }
    if (j == size_t(-1)) break;
  }
  return acc;
}

// Copies x (axes labelled `from`) into the axis order `to`, a permutation of `from`.
std::vector<double> permute(const std::vector<double>& x, const std::vector<int64_t>& dims, const std::vector<int>& from,
                            const std::vector<int>& to) {
  std::vector<int64_t> own = strides_of(dims), st, ext;
  for (int l : to) {
    size_t a = std::find(from.begin(), from.end(), l) - from.begin();
    st.push_back(own[a]);
    ext.push_back(dims[a]);
  }
  std::vector<double> out(x.size());
  std::vector<int64_t> idx(to.size(), 0);
  int64_t off = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = x[off];
    for (size_t d = to.size(); d-- > 0;) {
      if (++idx[d] < ext[d]) { off += st[d]; break; }
      off -= st[d] * (ext[d] - 1);
      idx[d] = 0;
    }
  }
  return out;
}

bool has(const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); }

// Two operands without diagonals, broadcasting or single-operand sums are a batched matmul:
// permute A to [batch, m, k] and B to [batch, k, n], one GEMM per batch, permute back.
bool contract_gemm(const EinsumSpec& spec, const std::vector<std::vector<double>>& in,
                   const std::vector<std::vector<int64_t>>& dims, std::vector<double>& out) {
  if (in.size() != 2) return false;
  const auto &la = spec.inputs[0], &lb = spec.inputs[1], &lo = spec.output;
  for (size_t i = 0; i < 2; ++i)
    for (size_t a = 0; a < dims[i].size(); ++a) {
      const int l = spec.inputs[i][a];
      if (std::count(spec.inputs[i].begin(), spec.inputs[i].end(), l) != 1 || dims[i][a] != spec.sizes.at(l)) return false;
      if (!has(lo, l) && !has(spec.inputs[1 - i], l)) return false;
    }
  std::vector<int> batch, m, n, k;
  for (int l : lo) {
    if (has(la, l) && has(lb, l)) batch.push_back(l);
    else if (has(la, l)) m.push_back(l);
    else n.push_back(l);
  }
  for (int l : la) if (has(lb, l) && !has(lo, l)) k.push_back(l);
  auto size = [&](const std::vector<int>& ls) {
    int64_t p = 1;
    for (int l : ls) p *= spec.sizes.at(l);
    return p;
  };
  auto cat = [](std::vector<int> a, const std::vector<int>& b, const std::vector<int>& c) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
  };
  const int64_t nb = size(batch), nm = size(m), nn = size(n), nk = size(k);
  std::vector<double> a = permute(in[0], dims[0], la, cat(batch, m, k));
  std::vector<double> b = permute(in[1], dims[1], lb, cat(batch, k, n));
  std::vector<double> y(static_cast<size_t>(nb * nm * nn), 0.0);
  for (int64_t i = 0; i < nb; ++i)
    gemm<double>(false, false, nm, nn, nk, 1.0, a.data() + i * nm * nk, nk, b.data() + i * nk * nn, nn, 0.0,
                 y.data() + i * nm * nn, nn);
  std::vector<int> ylabels = cat(batch, m, n);
  std::vector<int64_t> ydims;
  for (int l : ylabels) ydims.push_back(spec.sizes.at(l));
  out = permute(y, ydims, ylabels, lo);
  return true;
}

Status einsum(KernelContext& ctx) {
  std::vector<std::vector<int64_t>> dims;
  std::vector<std::vector<double>> in;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    dims.push_back(ctx.input(i).dims());
    in.push_back(as_doubles(ctx.input(i)));
  }
  auto spec = parse_einsum(ctx.node().attr_string("equation", ""), dims);
  if (!spec) return ctx.fail(spec.status().message());
  Tensor& y = ctx.output(0);
  std::vector<double> acc;
  if (!contract_gemm(*spec, in, dims, acc)) acc = contract_loop(*spec, in, dims, y.dims());
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
