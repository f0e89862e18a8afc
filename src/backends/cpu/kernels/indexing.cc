// CPU kernels of the indexing family: Gather, GatherElements, GatherND, Scatter(Elements),
// ScatterND, OneHot. Gathers move elements as bytes, so they work for every fixed-size type;
// scatter reductions compute in compute_t<T>. Every index is checked against its dim before
// it is used: a bad index is an error naming the node, never an out-of-bounds read.
// NonZero, Compress, Unique, TopK, Trilu and ReverseSequence are in indexing_select.cc.
#include <cstring>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/indexing_common.h"

namespace kiln::cpu {

void register_indexing_select_kernels(KernelTable& t);

namespace {

// Maps index `i` (negative counts from the end) into [0, n), or fails naming it.
Expected<int64_t> resolve_index(const KernelContext& ctx, int64_t i, int64_t n, const char* what) {
  if (i < -n || i >= n) return ctx.fail(what, " index ", i, " is out of range [", -n, ", ", n - 1, "]");
  return i < 0 ? i + n : i;
}

Expected<std::vector<int64_t>> read_indices(const KernelContext& ctx, size_t input) {
  auto v = ctx.input(input).to_int64_vector();
  if (!v) return ctx.fail("input ", input, ": ", v.status().message());
  return v;
}

Expected<int64_t> axis_attr(const KernelContext& ctx, int64_t rank) {
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < -rank || axis >= rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

Status gather(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, data.dtype()));
  KILN_ASSIGN_OR_RETURN(int64_t axis, axis_attr(ctx, static_cast<int64_t>(data.rank())));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, read_indices(ctx, 1));
  const auto& d = data.dims();
  const int64_t outer = product(d.begin(), d.begin() + axis), n = d[axis];
  const size_t inner_bytes = static_cast<size_t>(product(d.begin() + axis + 1, d.end())) * es;
  for (int64_t& i : idx) { KILN_ASSIGN_OR_RETURN(i, resolve_index(ctx, i, n, "gather")); }
  if (inner_bytes == 0) return Status::ok();  // empty output: nothing to copy
  const std::byte* src = data.raw();
  std::byte* dst = ctx.output(0).mutable_raw();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : idx) {
      std::memcpy(dst, src + (o * n + i) * inner_bytes, inner_bytes);
      dst += inner_bytes;
    }
  return Status::ok();
}

// For GatherElements / ScatterElements: the data offset of every element of `indices`, i.e.
// its own coordinates with the one at `axis` replaced by the index value.
Expected<std::vector<int64_t>> element_offsets(const KernelContext& ctx, const Tensor& data, size_t idx_input,
                                               int64_t axis) {
  const Tensor& indices = ctx.input(idx_input);
  if (indices.rank() != data.rank())
    return ctx.fail("indices ", indices.describe(), " must have the rank of data ", data.describe());
  for (size_t k = 0; k < data.rank(); ++k)
    if (static_cast<int64_t>(k) != axis && indices.dim(k) > data.dim(k))
      return ctx.fail("indices ", indices.describe(), " exceed data ", data.describe(), " in dim ", k);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, read_indices(ctx, idx_input));
  const std::vector<int64_t> st = strides_of(data.dims());
  const std::vector<int64_t>& dims = indices.dims();
  std::vector<int64_t> coord(dims.size(), 0);
  std::vector<int64_t> out(idx.size());
  for (size_t e = 0; e < idx.size(); ++e) {
    KILN_ASSIGN_OR_RETURN(int64_t i, resolve_index(ctx, idx[e], data.dim(axis), "element"));
    int64_t off = 0;
    for (size_t k = 0; k < dims.size(); ++k) off += (static_cast<int64_t>(k) == axis ? i : coord[k]) * st[k];
    out[e] = off;
    for (size_t k = dims.size(); k-- > 0;) {  // odometer over the indices' coordinates
      if (++coord[k] < dims[k]) break;
      coord[k] = 0;
    }
  }
  return out;
}

Status gather_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, data.dtype()));
  KILN_ASSIGN_OR_RETURN(int64_t axis, axis_attr(ctx, static_cast<int64_t>(data.rank())));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> offs, element_offsets(ctx, data, 1, axis));
  std::byte* dst = ctx.output(0).mutable_raw();
  for (size_t e = 0; e < offs.size(); ++e) std::memcpy(dst + e * es, data.raw() + offs[e] * es, es);
  return Status::ok();
}

// The ND ops view data as [batch..., indexed (k dims)..., slice...] and indices as
// [batch..., tuples..., k]. Returns, per index tuple, the element offset of its slice in data.
Expected<std::vector<int64_t>> tuple_offsets(const KernelContext& ctx, const Tensor& data, const Tensor& indices,
                                             int64_t batch_dims) {
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, read_indices(ctx, 1));
  const auto& dd = data.dims();
  const auto& id = indices.dims();
  const int64_t k = id.back();
  const int64_t batch = product(dd.begin(), dd.begin() + batch_dims);
  const int64_t tuples_per_batch = product(id.begin() + batch_dims, id.end() - 1);
  const std::vector<int64_t> st = strides_of(dd);
  const int64_t batch_stride = batch_dims > 0 ? st[batch_dims - 1] : 0;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(batch * tuples_per_batch));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < tuples_per_batch; ++t) {
      const int64_t* tuple = idx.data() + (b * tuples_per_batch + t) * k;
      int64_t off = b * batch_stride;
      for (int64_t j = 0; j < k; ++j) {
        KILN_ASSIGN_OR_RETURN(int64_t i, resolve_index(ctx, tuple[j], dd[batch_dims + j], "nd"));
        off += i * st[batch_dims + j];
      }
      out.push_back(off);
    }
  return out;
}

Status gather_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, data.dtype()));
  const int64_t b = ctx.node().attr_int("batch_dims", 0);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> offs, tuple_offsets(ctx, data, indices, b));
  const size_t slice_bytes = static_cast<size_t>(product(data.dims().begin() + b + indices.dims().back(),
                                                         data.dims().end())) * es;
  if (slice_bytes == 0) return Status::ok();  // empty output: nothing to copy
  std::byte* dst = ctx.output(0).mutable_raw();
  for (int64_t off : offs) {
    std::memcpy(dst, data.raw() + off * es, slice_bytes);
    dst += slice_bytes;
  }
  return Status::ok();
}

// Writes `count` updates from `upd` into `dst` combining them with `reduction`.
template <class T>
void combine(T* dst, const T* upd, int64_t count, const std::string& reduction) {
  using C = compute_t<T>;
  for (int64_t i = 0; i < count; ++i) {
    const C a = static_cast<C>(dst[i]), b = static_cast<C>(upd[i]);
    C r = b;
    if (reduction == "add") r = a + b;
    else if (reduction == "mul") r = a * b;
    else if (reduction == "max") r = a < b ? b : a;
    else if (reduction == "min") r = b < a ? b : a;
    dst[i] = static_cast<T>(r);
  }
}

// Copies data to the output, then applies `count` updates per offset (ScatterElements: 1,
// ScatterND: the slice size) at the given element offsets, in index order.
Status scatter_into_output(KernelContext& ctx, const std::vector<int64_t>& offs, int64_t count) {
  const Tensor& data = ctx.input(0);
  const Tensor& upd = ctx.input(2);
  if (upd.dtype() != data.dtype()) return ctx.fail("updates type differs from data type");
  if (upd.numel() != static_cast<int64_t>(offs.size()) * count)
    return ctx.fail("updates ", upd.describe(), " do not match the indices");
  Tensor& out = ctx.output(0);
  if (data.nbytes() > 0) std::memcpy(out.mutable_raw(), data.raw(), data.nbytes());
  const std::string red = ctx.opset() >= 16 ? ctx.node().attr_string("reduction", "none") : "none";
  if (red == "none") {
    KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, data.dtype()));
    for (size_t e = 0; e < offs.size(); ++e)
      std::memcpy(out.mutable_raw() + offs[e] * es, upd.raw() + e * count * es, count * es);
    return Status::ok();
  }
  return visit_dtype(data.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    for (size_t e = 0; e < offs.size(); ++e)
      combine(out.mutable_data<T>() + offs[e], upd.data<T>() + e * count, count, red);
  });
}

Status scatter_elements(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(int64_t axis, axis_attr(ctx, static_cast<int64_t>(data.rank())));
  if (ctx.input(1).dims() != ctx.input(2).dims())
    return ctx.fail("indices ", ctx.input(1).describe(), " and updates ", ctx.input(2).describe(),
                    " must have the same shape");
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> offs, element_offsets(ctx, data, 1, axis));
  return scatter_into_output(ctx, offs, 1);
}

Status scatter_nd(KernelContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> offs, tuple_offsets(ctx, data, indices, 0));
  const int64_t slice = product(data.dims().begin() + indices.dims().back(), data.dims().end());
  return scatter_into_output(ctx, offs, slice);
}

Status one_hot(KernelContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const Tensor& values = ctx.input(2);
  Tensor& out = ctx.output(0);
  KILN_ASSIGN_OR_RETURN(size_t es, element_size(ctx, values.dtype()));
  if (values.numel() != 2) return ctx.fail("values must hold 2 elements, got ", values.describe());
  const int64_t depth = static_cast<int64_t>(ctx.input(1).get_as_double(0));
  const int64_t rank = static_cast<int64_t>(out.rank());
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += rank;
  const int64_t inner = product(out.dims().begin() + axis + 1, out.dims().end());
  const std::byte* off_value = values.raw();
  const std::byte* on_value = values.raw() + es;
  std::byte* dst = out.mutable_raw();
  for (int64_t e = 0; e < out.numel(); ++e) std::memcpy(dst + e * es, off_value, es);
  for (int64_t e = 0; e < indices.numel(); ++e) {
    // Non-integer indices are truncated; ones outside [-depth, depth) leave the row all off.
    int64_t i = static_cast<int64_t>(indices.get_as_double(e));
    if (i < -depth || i >= depth) continue;
    if (i < 0) i += depth;
    const int64_t o = e / inner, r = e % inner;
    std::memcpy(dst + ((o * depth + i) * inner + r) * es, on_value, es);
  }
  return Status::ok();
}

}  // namespace

void register_indexing_kernels(KernelTable& t) {
  t.add("", "Gather", gather);
  t.add("", "GatherElements", gather_elements);
  t.add("", "GatherND", gather_nd);
  t.add("", "Scatter", scatter_elements);
  t.add("", "ScatterElements", scatter_elements);
  t.add("", "ScatterND", scatter_nd);
  t.add("", "OneHot", one_hot);
  register_indexing_select_kernels(t);
}

}  // namespace kiln::cpu
