// CUDA kernel of the attention family: ONNX Attention (opset 23) in float16/bfloat16, the op
// passes/fuse_attention.cc makes of a transformer's MatMul -> scale -> Add(mask) -> Softmax ->
// MatMul chain. One fused kernel, flash-attention style: per block 64 query rows of one (batch,
// head), key/value tiles of 64 streamed through shared memory, QK^T and PV on tensor cores (wmma
// 16x16x16, float accumulation), an online softmax in float. The [B, S, H*D] (3-D) and
// [B, H, S, D] (4-D) layouts are both read in place through strides, so the head split/merge
// transposes of the unfused graph never run. Scores never reach global memory.
// Covers: head size 32, 64 or 128 (Q, K and V alike), as many query as key/value heads, an
// optional additive mask of Q's type broadcast to [B, H, Sq, Sk], no past/present cache, no
// causal flag, no softcap, one output. Everything else runs on the CPU reference kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cmath>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda {

namespace {

using namespace nvcuda;

constexpr int kRows = 64;   // query rows per block (16 per warp)
constexpr int kKeys = 64;   // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kLdP = kKeys + 8;  // half pitch of the probabilities tile
constexpr int kLdS = kKeys + 4;  // float pitch of the scores tile

struct AttnArgs {
  const void *q, *k, *v, *mask;
  void* o;
  int64_t heads, sq, sk;
  // Element strides of batch, head and sequence (the head dim is contiguous).
  int64_t q_b, q_h, q_s, k_b, k_h, k_s, v_b, v_h, v_s, o_b, o_h, o_s;
  int64_t m_b, m_h, m_q, m_k;  // the mask's; 0 broadcasts
  float scale;
};

template <int D>
constexpr size_t smem_bytes() {
  // Q, K, V tiles (pitch D + 8, half), probabilities (half), scores and output (float), m and l.
  return size_t(3 * kRows * (D + 8) + kRows * kLdP) * 2 + size_t(kRows * kLdS + kRows * (D + 4)) * 4 +
         2 * kRows * 4;
}

// Copies rows [r0, r0 + 64) of a [rows, D] strided operand into shared memory (pitch D + 8),
// 16 bytes at a time; rows past `rows` become zeros.
template <class T, int D>
__device__ void load_tile(T* dst, const T* src, int64_t r0, int64_t rows, int64_t stride) {
  constexpr int kChunks = D / 8;  // 8 halves per 16 bytes
  for (int i = threadIdx.x; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r0 + r < rows) val = *reinterpret_cast<const uint4*>(src + (r0 + r) * stride + c);
    *reinterpret_cast<uint4*>(dst + r * (D + 8) + c) = val;
  }
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class T, int D>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttnArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr int kLd = D + 8, kLdO = D + 4;
  T* qs = reinterpret_cast<T*>(smem);
  T* ks = qs + kRows * kLd;
  T* vs = ks + kRows * kLd;
  T* ps = vs + kRows * kLd;
  float* ss = reinterpret_cast<float*>(ps + kRows * kLdP);
  float* os = ss + kRows * kLdS;
  float* mrow = os + kRows * kLdO;
  float* lrow = mrow + kRows;

  const int64_t tiles = (a.sq + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * kRows;
  const int64_t b = bh / a.heads, h = bh % a.heads;
  const T* q = static_cast<const T*>(a.q) + b * a.q_b + h * a.q_h;
  const T* k = static_cast<const T*>(a.k) + b * a.k_b + h * a.k_h;
  const T* v = static_cast<const T*>(a.v) + b * a.v_b + h * a.v_h;
  const T* mask = a.mask ? static_cast<const T*>(a.mask) + b * a.m_b + h * a.m_h : nullptr;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  load_tile<T, D>(qs, q, q0, a.sq, a.q_s);
  for (int i = threadIdx.x; i < kRows * kLdO; i += kThreads) os[i] = 0.f;
  for (int i = threadIdx.x; i < kRows; i += kThreads) { mrow[i] = -INFINITY; lrow[i] = 0.f; }

  const int wr = warp * 16;  // this warp's first row in the tile
  for (int64_t k0 = 0; k0 < a.sk; k0 += kKeys) {
    __syncthreads();  // the previous tile's readers are done (and Q/os/m/l are initialized)
    load_tile<T, D>(ks, k, k0, a.sk, a.k_s);
    load_tile<T, D>(vs, v, k0, a.sk, a.v_s);
    __syncthreads();
    // S = Q K^T for this warp's 16 rows: K row-major [key][d] is K^T column-major.
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, qs + wr * kLd + kk * 16, kLd);
        wmma::load_matrix_sync(fb, ks + (j * 16) * kLd + kk * 16, kLd);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(ss + wr * kLdS + j * 16, acc, kLdS, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax over this tile, a row at a time: each lane holds keys lane and lane + 32.
    for (int r = 0; r < 16; ++r) {
      const int row = wr + r;
      const int64_t qi = q0 + row;
      float s[2];
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const int c = lane + 32 * t;
        const int64_t key = k0 + c;
        float x = -INFINITY;
        if (key < a.sk) {
          x = ss[row * kLdS + c] * a.scale;
          if (mask && qi < a.sq) x += float(mask[qi * a.m_q + key * a.m_k]);
        }
        s[t] = x;
      }
      const float m_old = mrow[row];
      const float m_new = fmaxf(m_old, warp_max(fmaxf(s[0], s[1])));
      float alpha = 1.f, p0 = 0.f, p1 = 0.f;
      if (m_new != -INFINITY) {  // else every score so far is -inf: nothing to add yet
        alpha = __expf(m_old - m_new);
        p0 = __expf(s[0] - m_new);
        p1 = __expf(s[1] - m_new);
      }
      ps[row * kLdP + lane] = T(p0);
      ps[row * kLdP + lane + 32] = T(p1);
      const float sum = warp_sum(p0 + p1);
      for (int c = lane; c < D; c += 32) os[row * kLdO + c] *= alpha;
      if (lane == 0) { lrow[row] = lrow[row] * alpha + sum; mrow[row] = m_new; }
    }
    __syncwarp();
    // O += P V: V row-major [key][d] is the row-major right operand.
#pragma unroll
    for (int j = 0; j < D / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, os + wr * kLdO + j * 16, kLdO, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, ps + wr * kLdP + kk * 16, kLdP);
        wmma::load_matrix_sync(fb, vs + (kk * 16) * kLd + j * 16, kLd);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(os + wr * kLdO + j * 16, acc, kLdO, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncthreads();  // with no keys at all, m/l were set by other threads
  T* o = static_cast<T*>(a.o) + b * a.o_b + h * a.o_h;
  for (int r = 0; r < 16; ++r) {
    const int row = wr + r;
    const int64_t qi = q0 + row;
    if (qi >= a.sq) break;
    const float l = lrow[row];
    const float inv = l > 0.f ? 1.f / l : 0.f;  // a fully masked row gives zeros
    for (int c = lane; c < D; c += 32) o[qi * a.o_s + c] = T(os[row * kLdO + c] * inv);
  }
}

template <class T, int D>
Status launch(LaunchContext& ctx, const AttnArgs& a, int64_t bh) {
  constexpr size_t bytes = smem_bytes<D>();
  // Over 48 KiB of shared memory needs the opt-in, once per kernel (the first enqueue, before
  // any CUDA graph capture).
  static bool opted_in = false;
  if (!opted_in) {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    opted_in = true;
  }
  const int64_t blocks = bh * ((a.sq + kRows - 1) / kRows);
  attention_kernel<T, D><<<unsigned(blocks), kThreads, bytes, ctx.stream>>>(a);
  return check(cudaGetLastError(), "attention kernel launch");
}

// [batch, heads, seq] strides of a 3-D [B, S, H*D] or 4-D [B, H, S, D] operand.
void strides(const DeviceTensor& t, int64_t heads, int64_t d, int64_t* sb, int64_t* sh, int64_t* ss) {
  if (t.dims.size() == 3) { *sb = t.dims[1] * t.dims[2]; *sh = d; *ss = t.dims[2]; }
  else { *sb = t.dims[1] * t.dims[2] * t.dims[3]; *sh = t.dims[2] * t.dims[3]; *ss = t.dims[3]; }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

Status attention(LaunchContext& ctx) {
  const DeviceTensor &tq = ctx.inputs[0], &tk = ctx.inputs[1], &tv = ctx.inputs[2], &ty = ctx.outputs[0];
  const Node& n = ctx.node;
  const size_t rank = tq.dims.size();
  if ((rank != 3 && rank != 4) || tk.dims.size() != rank || tv.dims.size() != rank)
    return ctx.fail("Attention wants 3-D or 4-D Q, K and V of one rank");
  const int64_t heads = rank == 3 ? n.attr_int("q_num_heads", 0) : tq.dims[1];
  if (heads <= 0) return ctx.fail("Attention without a head count");
  const int64_t d = rank == 3 ? tq.dims[2] / heads : tq.dims[3];
  const int64_t dk = rank == 3 ? tk.dims[2] / heads : tk.dims[3], dv = rank == 3 ? tv.dims[2] / heads : tv.dims[3];
  const int64_t batch = tq.dims[0], sq = rank == 3 ? tq.dims[1] : tq.dims[2], sk = rank == 3 ? tk.dims[1] : tk.dims[2];
  if (dk != d || dv != d || (rank == 4 && (tk.dims[1] != heads || tv.dims[1] != heads)))
    return ctx.fail("the CUDA Attention kernel wants one head size and head count for Q, K and V");
  if ((rank == 3 ? (tv.dims[1] != sk) : (tv.dims[2] != sk)) || tk.dims[0] != batch || tv.dims[0] != batch)
    return ctx.fail("K and V disagree");
  if (ty.numel() == 0) return Status::ok();
  AttnArgs a{};
  a.q = tq.data; a.k = tk.data; a.v = tv.data; a.o = ty.data;
  a.heads = heads; a.sq = sq; a.sk = sk;
  a.scale = n.has_attr("scale") ? n.attr_float("scale", 1.f) : float(1.0 / std::sqrt(double(d)));
  strides(tq, heads, d, &a.q_b, &a.q_h, &a.q_s);
  strides(tk, heads, d, &a.k_b, &a.k_h, &a.k_s);
  strides(tv, heads, d, &a.v_b, &a.v_h, &a.v_s);
  strides(ty, heads, d, &a.o_b, &a.o_h, &a.o_s);
  for (const void* p : {tq.data, tk.data, tv.data})
    if (!aligned16(p)) return ctx.fail("Attention operands must be 16-byte aligned");
  for (int64_t s : {a.q_s, a.k_s, a.v_s, a.q_h, a.k_h, a.v_h, a.q_b, a.k_b, a.v_b})
    if (s % 8) return ctx.fail("Attention operand strides must be multiples of 8 elements");
  if (ctx.has_input(3)) {  // right-aligned broadcast to [B, H, Sq, Sk]
    const DeviceTensor& m = ctx.inputs[3];
    const size_t mr = m.dims.size();
    if (mr < 1 || mr > 4) return ctx.fail("attn_mask rank ", mr);
    const int64_t full[4] = {batch, heads, sq, sk};
    int64_t st[4] = {0, 0, 0, 0}, step = 1;
    for (size_t i = 0; i < mr; ++i) {
      const size_t di = mr - 1 - i, fi = 3 - i;
      const int64_t dim = m.dims[di];
      // ONNX pads a shorter last dim as masked; this kernel takes only the full key length there.
      if (fi == 3 ? dim != sk : (dim != 1 && dim != full[fi]))
        return ctx.fail("attn_mask ", dims_to_string(m.dims), " is not [.., Sk] broadcast to [B, H, Sq, Sk]");
      st[fi] = dim == 1 ? 0 : step;
      step *= dim;
    }
    a.mask = m.data;
    a.m_b = st[0]; a.m_h = st[1]; a.m_q = st[2]; a.m_k = st[3];
  }
  const int64_t bh = batch * heads;
  auto go = [&](auto tag) -> Status {
    using T = decltype(tag);
    switch (d) {
      case 32: return launch<T, 32>(ctx, a, bh);
      case 64: return launch<T, 64>(ctx, a, bh);
      case 128: return launch<T, 128>(ctx, a, bh);
      default: return ctx.fail("no CUDA Attention kernel for head size ", d);
    }
  };
  if (ty.dtype == DataType::kFloat16) return go(__half());
  if (ty.dtype == DataType::kBFloat16) return go(__nv_bfloat16());
  return ctx.fail("no CUDA Attention kernel for ", dtype_name(ty.dtype));
}

Support check_attention(const Node& n) {
  if (n.inputs.size() < 3 || !n.inputs[0] || !n.inputs[1] || !n.inputs[2]) return Support::no("Q, K or V missing");
  for (size_t i = 4; i < n.inputs.size(); ++i)
    if (n.inputs[i]) return Support::no("past key/value or nonpad_kv_seqlen (no KV cache in this kernel)");
  for (size_t i = 1; i < n.outputs.size(); ++i) if (n.outputs[i]) return Support::no("present key/value or qk output");
  const DataType t = n.inputs[0]->dtype;
  if (t != DataType::kFloat16 && t != DataType::kBFloat16) return Support::no("float16/bfloat16 only");
  if (n.inputs.size() > 3 && n.inputs[3] && n.inputs[3]->dtype != t) return Support::no("a boolean or other-typed mask");
  if (n.attr_int("is_causal", 0) != 0) return Support::no("is_causal");
  if (n.attr_float("softcap", 0.f) != 0.f) return Support::no("softcap");
  const Shape& q = n.inputs[0]->shape;
  if (!q.rank_known() || (q.rank() != 3 && q.rank() != 4)) return Support::no("Q rank");
  const Shape& k = n.inputs[1]->shape;
  const Shape& v = n.inputs[2]->shape;
  if (!k.rank_known() || !v.rank_known() || k.rank() != q.rank() || v.rank() != q.rank()) return Support::no("K/V rank");
  const size_t hd = q.rank() - 1;
  for (const Shape* s : {&q, &k, &v}) if (!(*s)[hd].is_static()) return Support::no("dynamic head size");
  int64_t heads_q, heads_kv;
  if (q.rank() == 3) {
    heads_q = n.attr_int("q_num_heads", 0);
    heads_kv = n.attr_int("kv_num_heads", 0);
  } else {
    if (!q[1].is_static() || !k[1].is_static()) return Support::no("dynamic head count");
    heads_q = q[1].value();
    heads_kv = k[1].value();
  }
  if (heads_q <= 0 || heads_q != heads_kv) return Support::no("grouped-query heads");
  const int64_t d = q.rank() == 3 ? q[2].value() / heads_q : q[3].value();
  const int64_t dk = q.rank() == 3 ? k[2].value() / heads_q : k[3].value();
  const int64_t dv = q.rank() == 3 ? v[2].value() / heads_q : v[3].value();
  if (d != dk || d != dv || (d != 32 && d != 64 && d != 128)) return Support::no("head size other than 32, 64, 128");
  return Support::yes();
}

}  // namespace

void register_cuda_attention_kernels(CudaKernelTable& t) {
  t.add({"", "Attention", "cuda.attention", attention, check_attention});
}

}  // namespace kiln::cuda
