// CPU kernels of the indexing family's selection ops: NonZero, Compress and Unique (which
// allocate their outputs, whose sizes depend on the data), TopK, Trilu, ReverseSequence.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/indexing_common.h"

namespace kiln::cpu {

namespace {

// NaN-aware strict weak order: NaNs are equal to each other and above every number, as in
// numpy's sort, so sorting never sees an inconsistent comparator.
template <class C>
bool less_nan_last(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

Status non_zero(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> hits;
  KILN_RETURN_IF_ERROR(visit_dtype(x.dtype(), AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* p = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (static_cast<C>(p[i]) != C(0)) hits.push_back(i);
  }));
  const int64_t rank = static_cast<int64_t>(x.rank()), n = static_cast<int64_t>(hits.size());
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DataType::kInt64, {rank, n}));
  int64_t* po = out->mutable_data<int64_t>();
  const std::vector<int64_t> st = strides_of(x.dims());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < rank; ++k) po[k * n + j] = (hits[j] / st[k]) % x.dim(k);
  return Status::ok();
}

Status compress(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& cond = ctx.input(1);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, x.dtype()));
  if (cond.dtype() != DataType::kBool || cond.rank() != 1)
    return ctx.fail("condition must be a 1-D bool tensor, got ", cond.describe());
  const bool has_axis = ctx.node().has_attr("axis");
  int64_t axis = 0;
  std::vector<int64_t> dims = has_axis ? x.dims() : std::vector<int64_t>{x.numel()};
  if (has_axis) {
    const int64_t r = static_cast<int64_t>(x.rank());
    axis = ctx.node().attr_int("axis", 0);
    if (axis < -r || axis >= r) return ctx.fail("axis ", axis, " is out of range for rank ", r);
    if (axis < 0) axis += r;
  }
  // A condition shorter than the axis selects from its prefix only (numpy.compress).
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (!cond.data<bool>()[i]) continue;
    if (i >= dims[axis]) return ctx.fail("condition selects index ", i, " beyond the axis size ", dims[axis]);
    keep.push_back(i);
  }
  const int64_t outer = product(dims.begin(), dims.begin() + axis), n = dims[axis];
  const size_t inner_bytes = static_cast<size_t>(product(dims.begin() + axis + 1, dims.end())) * es;
  dims[axis] = static_cast<int64_t>(keep.size());
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, x.dtype(), dims));
  std::byte* dst = out->mutable_raw();
  for (int64_t o = 0; o < outer && inner_bytes > 0; ++o)
    for (int64_t i : keep) {
      std::memcpy(dst, x.raw() + (o * n + i) * inner_bytes, inner_bytes);
      dst += inner_bytes;
    }
  return Status::ok();
}

Status trilu(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, x.dtype()));
  const int64_t k = ctx.has_input(1) ? ctx.input(1).get_as_int64(0) : 0;
  const bool upper = ctx.node().attr_int("upper", 1) != 0;
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  const int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  std::byte* dst = ctx.output(0).mutable_raw();
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        // Upper keeps the diagonal k and above (j - i >= k); lower keeps k and below.
        if (upper ? j - i < k : j - i > k) continue;
        const int64_t e = (m * rows + i) * cols + j;
        std::memcpy(dst + e * es, x.raw() + e * es, es);
      }
  return Status::ok();
}

Status reverse_sequence(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, x.dtype()));
  auto lens = ctx.input(1).to_int64_vector();
  if (!lens) return ctx.fail("sequence_lens: ", lens.status().message());
  const int64_t batch_axis = ctx.node().attr_int("batch_axis", 1), time_axis = ctx.node().attr_int("time_axis", 0);
  const int64_t batch = x.dim(batch_axis), time = x.dim(time_axis);
  if (static_cast<int64_t>(lens->size()) != batch)
    return ctx.fail("sequence_lens has ", lens->size(), " entries for batch size ", batch);
  const std::vector<int64_t> st = strides_of(x.dims());
  const size_t inner_bytes = static_cast<size_t>(product(x.dims().begin() + 2, x.dims().end())) * es;
  std::byte* dst = ctx.output(0).mutable_raw();
  if (x.nbytes() > 0) std::memcpy(dst, x.raw(), x.nbytes());
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = (*lens)[b];
    if (len < 0 || len > time) return ctx.fail("sequence length ", len, " is out of range [0, ", time, "]");
    for (int64_t t = 0; t < len; ++t) {
      const int64_t to = t * st[time_axis] + b * st[batch_axis];
      const int64_t from = (len - 1 - t) * st[time_axis] + b * st[batch_axis];
      std::memcpy(dst + to * es, x.raw() + from * es, inner_bytes);
    }
  }
  return Status::ok();
}

// Sorts positions 0..n-1 of each row along the axis; ties keep the lower index first.
Status top_k(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t r = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < -r || axis >= r) return ctx.fail("axis ", axis, " is out of range for rank ", r);
  if (axis < 0) axis += r;
  const int64_t k = ctx.opset() < 10 ? ctx.node().attr_int("k", 0) : ctx.input(1).get_as_int64(0);
  const bool largest = ctx.node().attr_int("largest", 1) != 0;
  const int64_t outer = product(x.dims().begin(), x.dims().begin() + axis), n = x.dim(axis);
  const int64_t inner = product(x.dims().begin() + axis + 1, x.dims().end());
  if (k < 0 || k > n) return ctx.fail("k = ", k, " is out of range [0, ", n, "]");
  // Both outputs are written even if the node omits one; the executor drops what it did not ask for.
  std::vector<int64_t> out_dims = x.dims();
  out_dims[axis] = k;
  KILN_ASSIGN_OR_RETURN(Tensor * values, ctx.allocate_output(0, x.dtype(), out_dims));
  KILN_ASSIGN_OR_RETURN(Tensor * indices, ctx.allocate_output(1, DataType::kInt64, out_dims));
  return visit_dtype(x.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* px = x.data<T>();
    T* pv = values->mutable_data<T>();
    int64_t* pi = indices->mutable_data<int64_t>();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        auto at = [&](int64_t i) { return static_cast<C>(px[(o * n + i) * inner + in]); };
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return largest ? less_nan_last(at(b), at(a)) : less_nan_last(at(a), at(b));
        });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t dst = (o * k + j) * inner + in;
          pv[dst] = px[(o * n + order[j]) * inner + in];
          pi[dst] = order[j];
        }
      }
  });
}

// Unique views X as [outer, n, inner] (n = the axis, or every element without an axis) and
// finds the distinct slices along n. Returns, for every distinct slice in output order, the
// positions holding it (ascending); sorted=1 orders slices by value, sorted=0 by first occurrence.
template <class T>
std::vector<std::vector<int64_t>> unique_groups(const T* px, int64_t outer, int64_t n, int64_t inner, bool sorted) {
  using C = compute_t<T>;
  auto cmp = [&](int64_t a, int64_t b) {  // lexicographic over the slice, in row-major order
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const C va = static_cast<C>(px[(o * n + a) * inner + i]), vb = static_cast<C>(px[(o * n + b) * inner + i]);
        if (less_nan_last(va, vb)) return -1;
        if (less_nan_last(vb, va)) return 1;
      }
    return 0;
  };
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
  std::vector<std::vector<int64_t>> groups;
  for (size_t j = 0; j < order.size(); ++j) {
    if (j == 0 || cmp(order[j - 1], order[j]) != 0) groups.emplace_back();
    groups.back().push_back(order[j]);
  }
  if (!sorted)
    std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  return groups;
}

Status unique(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, x.dtype()));
  const bool has_axis = ctx.node().has_attr("axis");
  std::vector<int64_t> dims = has_axis ? x.dims() : std::vector<int64_t>{x.numel()};
  int64_t axis = 0;
  if (has_axis) {
    const int64_t r = static_cast<int64_t>(x.rank());
    axis = ctx.node().attr_int("axis", 0);
    if (axis < -r || axis >= r) return ctx.fail("axis ", axis, " is out of range for rank ", r);
    if (axis < 0) axis += r;
  }
  const int64_t outer = product(dims.begin(), dims.begin() + axis), n = dims[axis];
  const int64_t inner = product(dims.begin() + axis + 1, dims.end());
  const bool sorted = ctx.node().attr_int("sorted", 1) != 0;
  std::vector<std::vector<int64_t>> groups;
  KILN_RETURN_IF_ERROR(visit_dtype(x.dtype(), AllTypes{}, [&](auto tag) {
    groups = unique_groups(x.data<decltype(tag)>(), outer, n, inner, sorted);
  }));
  const int64_t u = static_cast<int64_t>(groups.size());
  dims[axis] = u;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output(0, x.dtype(), dims));
  const size_t inner_bytes = static_cast<size_t>(inner) * es;
  for (int64_t o = 0; o < outer && inner_bytes > 0; ++o)
    for (int64_t g = 0; g < u; ++g)
      std::memcpy(y->mutable_raw() + (o * u + g) * inner_bytes, x.raw() + (o * n + groups[g][0]) * inner_bytes,
                  inner_bytes);
  std::vector<int64_t> first(u), inverse(n), counts(u);
  for (int64_t g = 0; g < u; ++g) {
    first[g] = groups[g][0];
    counts[g] = static_cast<int64_t>(groups[g].size());
    for (int64_t j : groups[g]) inverse[j] = g;
  }
  const std::vector<int64_t>* extra[] = {&first, &inverse, &counts};
  for (size_t i = 1; i < 4; ++i) {
    if (i >= ctx.num_outputs() || !ctx.has_output(i)) continue;
    const auto& v = *extra[i - 1];
    KILN_ASSIGN_OR_RETURN(Tensor * t, ctx.allocate_output(i, DataType::kInt64, {static_cast<int64_t>(v.size())}));
    std::copy(v.begin(), v.end(), t->mutable_data<int64_t>());
  }
  return Status::ok();
}

}  // namespace

void register_indexing_select_kernels(KernelTable& t) {
  t.add("", "NonZero", non_zero);
  t.add("", "Compress", compress);
  t.add("", "Trilu", trilu);
  t.add("", "ReverseSequence", reverse_sequence);
  t.add("", "TopK", top_k);
  t.add("", "Unique", unique);
}

}  // namespace kiln::cpu
