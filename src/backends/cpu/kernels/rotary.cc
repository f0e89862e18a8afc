// CPU kernels of the attention family's helpers: RotaryEmbedding (opset 23), as
// onnx.reference's op_rotary_embedding.py, and TensorScatter (opset 24), the KV-cache write.
#include <cstring>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/as_double.h"

namespace kiln::cpu {

namespace {

// The input as [batch, seq, heads, head_size]: 4-D inputs are [batch, heads, seq, head_size],
// 3-D ones [batch, seq, heads * head_size].
struct RotaryDims {
  int64_t batch, seq, heads, head;
  bool four_d;
  int64_t offset(int64_t b, int64_t s, int64_t h) const {
    return four_d ? ((b * heads + h) * seq + s) * head : ((b * seq + s) * heads + h) * head;
  }
};

Expected<RotaryDims> rotary_dims(const KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() == 4) return RotaryDims{x.dim(0), x.dim(2), x.dim(1), x.dim(3), true};
  if (x.rank() != 3) return ctx.fail("input must be 3-D or 4-D, got ", x.describe());
  const int64_t heads = ctx.node().attr_int("num_heads", 0);
  if (heads <= 0 || x.dim(2) % heads != 0)
    return ctx.fail("num_heads ", heads, " does not divide the hidden size ", x.dim(2));
  return RotaryDims{x.dim(0), x.dim(1), heads, x.dim(2) / heads, false};
}

// Row of cos/sin cache for (b, s): position_ids[b, s] into [max_pos, half] caches, or the
// [batch, seq, half] caches directly.
Expected<std::vector<int64_t>> cache_rows(const KernelContext& ctx, const RotaryDims& d, int64_t half) {
  const Tensor& cos = ctx.input(1);
  const Tensor& sin = ctx.input(2);
  if (cos.dims() != sin.dims() || cos.dims().empty() || cos.dims().back() != half)
    return ctx.fail("cos_cache ", cos.describe(), " and sin_cache ", sin.describe(),
                    " must match and end in rotary_embedding_dim / 2 = ", half);
  std::vector<int64_t> rows(static_cast<size_t>(d.batch * d.seq));
  if (!ctx.has_input(3)) {
    if (cos.dims() != std::vector<int64_t>{d.batch, d.seq, half})
      return ctx.fail("without position_ids the caches must be [batch, seq, ", half, "], got ", cos.describe());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    return rows;
  }
  auto ids = ctx.input(3).to_int64_vector();
  if (!ids) return ctx.fail("position_ids: ", ids.status().message());
  if (cos.rank() != 2 || ids->size() != rows.size())
    return ctx.fail("position_ids must be [batch, seq] and the caches [max_position, ", half, "]");
  for (size_t i = 0; i < rows.size(); ++i) {
    if ((*ids)[i] < 0 || (*ids)[i] >= cos.dim(0))
      return ctx.fail("position id ", (*ids)[i], " is outside the cache of ", cos.dim(0), " positions");
    rows[i] = (*ids)[i];
  }
  return rows;
}

// Rotates pairs (x1, x2) of the first rotary_embedding_dim channels of each head: halves
// (x[k], x[k + dim/2]) or, interleaved, neighbours (x[2k], x[2k + 1]).
Status rotary_embedding(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(RotaryDims d, rotary_dims(ctx));
  int64_t dim = ctx.node().attr_int("rotary_embedding_dim", 0);
  if (dim == 0) dim = d.head;
  if (dim < 0 || dim > d.head || dim % 2 != 0)
    return ctx.fail("rotary_embedding_dim ", dim, " must be even and at most the head size ", d.head);
  const int64_t half = dim / 2;
  const bool interleaved = ctx.node().attr_int("interleaved", 0) != 0;
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> rows, cache_rows(ctx, d, half));
  auto x = to_doubles(ctx.input(0));
  auto cos = to_doubles(ctx.input(1));
  auto sin = to_doubles(ctx.input(2));
  if (!x || !cos || !sin) return ctx.fail("input, cos_cache and sin_cache must be float tensors");
  const DataType t = ctx.input(0).dtype();
  std::vector<double> y = *x;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t s = 0; s < d.seq; ++s)
      for (int64_t h = 0; h < d.heads; ++h) {
        const int64_t base = d.offset(b, s, h), row = rows[b * d.seq + s] * half;
        for (int64_t k = 0; k < half; ++k) {
          const int64_t i1 = base + (interleaved ? 2 * k : k), i2 = base + (interleaved ? 2 * k + 1 : k + half);
          const double c = (*cos)[row + k], sn = (*sin)[row + k], x1 = (*x)[i1], x2 = (*x)[i2];
          y[i1] = round_to_float_type(t, round_to_float_type(t, c * x1) - round_to_float_type(t, sn * x2));
          y[i2] = round_to_float_type(t, round_to_float_type(t, sn * x1) + round_to_float_type(t, c * x2));
        }
      }
  Status st = from_doubles(ctx.output(0), y);
  return st ? st : ctx.fail(st.message());
}

// present = past_cache with update written along `axis` at write_indices[b] (per batch), wrapping
// in mode "circular". Element bytes are copied, so every type works.
Status tensor_scatter(KernelContext& ctx) {
  const Tensor &cache = ctx.input(0), &update = ctx.input(1);
  const int64_t rank = static_cast<int64_t>(cache.rank());
  int64_t axis = ctx.node().attr_int("axis", -2);
  if (axis < -rank || axis >= rank) return ctx.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  if (axis == 0 || update.rank() != cache.rank()) return ctx.fail("update must match past_cache's rank; axis not 0");
  for (int64_t i = 0; i < rank; ++i)
    if (i == axis ? update.dim(i) > cache.dim(i) : update.dim(i) != cache.dim(i))
      return ctx.fail("update ", update.describe(), " does not fit past_cache ", cache.describe());
  const bool circular = ctx.node().attr_string("mode", "linear") == "circular";
  std::vector<int64_t> writes(static_cast<size_t>(cache.dim(0)), 0);
  if (ctx.has_input(2)) {
    auto v = ctx.input(2).to_int64_vector();
    if (!v || static_cast<int64_t>(v->size()) != cache.dim(0))
      return ctx.fail("write_indices must hold one index per batch entry (", cache.dim(0), ")");
    writes = std::move(*v);
  }
  const size_t elem = dtype_size(cache.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= cache.dim(i);
  for (int64_t i = axis + 1; i < rank; ++i) inner *= cache.dim(i);
  const int64_t max_seq = cache.dim(axis), seq = update.dim(axis), per_batch = cache.dim(0) > 0 ? outer / cache.dim(0) : 1;
  Tensor& out = ctx.output(0);
  std::memcpy(out.mutable_raw(), cache.raw(), cache.nbytes());
  const size_t block = static_cast<size_t>(inner) * elem;
  for (int64_t o = 0; o < outer; ++o) {
    const int64_t start = writes[o / per_batch];
    for (int64_t s = 0; s < seq; ++s) {
      int64_t dst = start + s;
      if (circular) dst = ((dst % max_seq) + max_seq) % max_seq;
      if (dst < 0 || dst >= max_seq)
        return ctx.fail("write index ", start, " + ", seq, " updates overruns the cache of ", max_seq);
      std::memcpy(out.mutable_raw() + (o * max_seq + dst) * block, update.raw() + (o * seq + s) * block, block);
    }
  }
  return Status::ok();
}

}  // namespace

void register_rotary_kernels(KernelTable& t) {
  t.add("", "RotaryEmbedding", rotary_embedding);
  t.add("", "TensorScatter", tensor_scatter);
}

}  // namespace kiln::cpu
