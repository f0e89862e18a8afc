// CUDA kernel of the attention family: ONNX Attention (opset 23) in float16/bfloat16, the op
// passes/fuse_attention.cc makes of a transformer's MatMul -> scale -> Add(mask) -> Softmax ->
// MatMul chain, and kiln.PackedAttention (Q, K and V side by side in one [B, S, 3*H*D] tensor, as
// one fused in-projection GEMM writes them). One fused kernel, FlashAttention-2 style: each warp
// owns 16 query rows of one (batch, head); key/value tiles of 64 rows stream through shared
// memory (cp.async, double-buffered, one barrier per tile); S = Q K^T and O += P V run on
// tensor cores (mma.sync m16n8k16, float accumulation) with Q, S, P and O in registers; the
// softmax is online, in float, in the exp2 domain. Every operand is read in place through
// (batch, head, sequence) strides, so the head split/merge transposes of the unfused graph never
// run and the scores never reach memory.
// Block size: 4 warps (64 query rows) when that fills the GPU, else 2 or 1 (batch 1: BERT-base
// has 12 heads x 2 row tiles = 24 blocks of 64 rows for 132 SMs; 96 blocks of 16 rows).
// Covers: head size 32, 64 or 128 (Q, K and V alike), as many query as key/value heads, an
// optional additive mask of Q's type broadcast to [B, H, Sq, Sk], no past/present cache, no
// causal flag, no softcap, one output. Everything else runs on the CPU reference kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cmath>

#include "backends/cuda/cuda_status.h"
#include "backends/cuda/launch.h"

namespace kiln::cuda {

namespace {

constexpr int kKeys = 64;  // keys per K/V tile
constexpr float kLog2e = 1.4426950408889634f;

struct AttnArgs {
  const void *q, *k, *v, *mask;
  void* o;
  int64_t heads, sq, sk;
  // Element strides of batch, head and sequence (the head dim is contiguous).
  int64_t q_b, q_h, q_s, k_b, k_h, k_s, v_b, v_h, v_s, o_b, o_h, o_s;
  int64_t m_b, m_h, m_q, m_k;  // the mask's; 0 broadcasts
  float scale;
};

// Shared memory rows are padded by 8 halves (16 bytes): the 8 row addresses of one ldmatrix
// then fall in 8 different 16-byte bank groups.
template <int D>
constexpr int pitch() { return D + 8; }

template <int D, int W>
constexpr size_t smem_bytes() {
  return size_t(16 * W + 4 * kKeys) * pitch<D>() * 2;  // Q tile, then K and V, double-buffered
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared without a register round trip; src_bytes 0 writes zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

// Rows [r0, r0 + rows_here) of a [rows, D] strided operand into shared memory; rows past `rows`
// become zeros (their scores are masked, their outputs never written).
template <int D>
__device__ __forceinline__ void load_rows(__half* dst, const __half* src, int64_t r0, int rows_here, int64_t rows,
                                          int64_t stride, int tid, int nthreads) {
  constexpr int kChunks = D / 8;
  for (int i = tid; i < rows_here * kChunks; i += nthreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r0 + r < rows;
    cp_async16(dst + r * pitch<D>() + c, src + (valid ? (r0 + r) * stride + c : 0), valid);
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// D += A B for one m16n8k16 tile: A 4 registers, B 2, C/D 4 floats.
template <class T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

template <class T>
__device__ __forceinline__ float to_float(T v) { return float(v); }

// Thread layout of an m16n8 accumulator: lane = 4 g + t holds rows g and g + 8, columns 2t, 2t + 1.
template <class T, int D, int W>
__global__ void __launch_bounds__(W * 32) attention_kernel(AttnArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr int kP = pitch<D>();
  constexpr int kRows = 16 * W;
  __half* qs = reinterpret_cast<__half*>(smem);  // raw 16-bit storage; T only at the mma
  __half* kv = qs + kRows * kP;                   // [buffer][K | V][64][kP]

  const int64_t tiles = (a.sq + kRows - 1) / kRows;
  const int64_t bh = blockIdx.x / tiles, q0 = (blockIdx.x % tiles) * kRows;
  const int64_t b = bh / a.heads, h = bh % a.heads;
  const __half* q = static_cast<const __half*>(a.q) + b * a.q_b + h * a.q_h;
  const __half* k = static_cast<const __half*>(a.k) + b * a.k_b + h * a.k_h;
  const __half* v = static_cast<const __half*>(a.v) + b * a.v_b + h * a.v_h;
  const T* mask = a.mask ? static_cast<const T*>(a.mask) + b * a.m_b + h * a.m_h : nullptr;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int nthreads = W * 32;

  auto kv_tile = [&](int buf, int which) { return kv + (buf * 2 + which) * kKeys * kP; };
  load_rows<D>(qs, q, q0, kRows, a.sq, a.q_s, tid, nthreads);
  load_rows<D>(kv_tile(0, 0), k, 0, kKeys, a.sk, a.k_s, tid, nthreads);
  load_rows<D>(kv_tile(0, 1), v, 0, kKeys, a.sk, a.v_s, tid, nthreads);
  cp_async_commit();

  uint32_t qf[D / 16][4];  // this warp's 16 rows of Q as mma A fragments, one per 16 of D
  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};  // rows g and g + 8
  const float sl2 = a.scale * kLog2e;
  const int64_t row_g = q0 + warp * 16 + g;  // this thread's two query rows: row_g, row_g + 8
  // The mask rows of those two queries; a row past Sq reads the last one (its output is never written).
  const T* mrow0 = mask ? mask + min(row_g, a.sq - 1) * a.m_q : nullptr;
  const T* mrow1 = mask ? mask + min(row_g + 8, a.sq - 1) * a.m_q : nullptr;

  const int64_t ntiles = (a.sk + kKeys - 1) / kKeys;
  for (int64_t it = 0; it < ntiles; ++it) {
    const int buf = int(it & 1);
    cp_async_wait_all();
    __syncthreads();  // tile `it` is in; every warp is done with the buffer the next load reuses
    if (it + 1 < ntiles) {
      load_rows<D>(kv_tile(buf ^ 1, 0), k, (it + 1) * kKeys, kKeys, a.sk, a.k_s, tid, nthreads);
      load_rows<D>(kv_tile(buf ^ 1, 1), v, (it + 1) * kKeys, kKeys, a.sk, a.v_s, tid, nthreads);
      cp_async_commit();
    }
    if (it == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        ldmatrix_x4(qf[kk], qs + (warp * 16 + (lane % 16)) * kP + kk * 16 + (lane / 16) * 8);
    }
    const __half* ks = kv_tile(buf, 0);
    const __half* vs = kv_tile(buf, 1);
    // S = Q K^T: 8 accumulators of 8 keys each. K row-major [key][d] is K^T column-major: the
    // plain ldmatrix of K rows gives the B fragments (x4: two key groups x two halves of 16 d).
    float s[kKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t bf[4];
        const int m = lane / 8;
        ldmatrix_x4(bf, ks + (j * 16 + (lane % 8) + (m / 2) * 8) * kP + kk * 16 + (m % 2) * 8);
        mma<T>(s[2 * j], qf[kk], bf[0], bf[1]);
        mma<T>(s[2 * j + 1], qf[kk], bf[2], bf[3]);
      }
    }
    // Scale (into the exp2 domain), mask, and the online softmax update of rows g and g + 8.
    const int64_t k0 = it * kKeys;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int64_t key = k0 + j * 8 + 2 * t + c;
        float x0 = -INFINITY, x1 = -INFINITY;
        if (key < a.sk) {
          x0 = s[j][c] * sl2;
          x1 = s[j][2 + c] * sl2;
          if (mask) {  // a mask broadcast over queries (BERT's padding mask) is read once for both rows
            const float m0 = to_float(mrow0[key * a.m_k]);
            x0 += m0 * kLog2e;
            x1 += (a.m_q ? to_float(mrow1[key * a.m_k]) : m0) * kLog2e;
          }
        }
        s[j][c] = x0;
        s[j][2 + c] = x1;
        mx[0] = fmaxf(mx[0], x0);
        mx[1] = fmaxf(mx[1], x1);
      }
    }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m_run[r], mx[r]);
      // Every score so far -inf (masked or padding): subtract 0 so exp2 gives 0s, not NaNs.
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      alpha[r] = exp2f(m_run[r] - m_use);
      m_run[r] = m_new;
      mx[r] = m_use;
    }
    float sum[2] = {0.f, 0.f};
#pragma unroll
    for (int j = 0; j < kKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = exp2f(s[j][e] - mx[e >> 1]);
        sum[e >> 1] += s[j][e];
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * alpha[r] + sum[r];  // quad sum deferred to the end
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      o[j][0] *= alpha[0]; o[j][1] *= alpha[0];
      o[j][2] *= alpha[1]; o[j][3] *= alpha[1];
    }
    // O += P V. The accumulators of key groups 2kk and 2kk + 1 are exactly the A fragment of the
    // k-step kk; V row-major [key][d] needs the transposing ldmatrix for its B fragments.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      const uint32_t pa[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int j = 0; j < D / 16; ++j) {
        uint32_t bf[4];
        const int m = lane / 8;
        ldmatrix_x4_trans(bf, vs + (kk * 16 + (lane % 8) + (m % 2) * 8) * kP + j * 16 + (m / 2) * 8);
        mma<T>(o[2 * j], pa, bf[0], bf[1]);
        mma<T>(o[2 * j + 1], pa, bf[2], bf[3]);
      }
    }
  }
  // Normalize by the row sums (summed over the quad now) and store: a fully masked row, and a
  // query with no keys at all, give zeros.
  T* out = static_cast<T*>(a.o) + b * a.o_b + h * a.o_h;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = l_run[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int64_t row = row_g + r * 8;
    if (row >= a.sq) continue;
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<uint32_t*>(out + row * a.o_s + j * 8 + 2 * t) =
          pack2<T>(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
  }
}

int sm_count() {
  static const int n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 0;
    return v;
  }();
  return n;
}

template <class T, int D, int W>
Status launch_w(LaunchContext& ctx, const AttnArgs& a, int64_t bh) {
  constexpr size_t bytes = smem_bytes<D, W>();
  // Over 48 KiB of shared memory needs the opt-in, once per kernel (the first enqueue, before
  // any CUDA graph capture; contexts on several threads may both ask: harmless).
  static std::atomic<bool> opted_in{false};
  if (!opted_in) {
    KILN_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<T, D, W>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    opted_in = true;
  }
  const int64_t blocks = bh * ((a.sq + 16 * W - 1) / (16 * W));
  attention_kernel<T, D, W><<<unsigned(blocks), W * 32, bytes, ctx.stream>>>(a);
  return check(cudaGetLastError(), "attention kernel launch");
}

template <class T, int D>
Status launch(LaunchContext& ctx, const AttnArgs& a, int64_t bh) {
  // The widest block that still gives every SM a block: fewer query rows per block re-read K/V
  // more often (from L2), but an idle SM costs more.
  const int64_t sms = sm_count();
  auto blocks = [&](int w) { return bh * ((a.sq + 16 * w - 1) / (16 * w)); };
  if (blocks(4) >= sms) return launch_w<T, D, 4>(ctx, a, bh);
  if (blocks(2) >= sms) return launch_w<T, D, 2>(ctx, a, bh);
  return launch_w<T, D, 1>(ctx, a, bh);
}

// [batch, heads, seq] strides of a 3-D [B, S, H*D] or 4-D [B, H, S, D] operand.
void strides(const DeviceTensor& t, int64_t heads, int64_t d, int64_t* sb, int64_t* sh, int64_t* ss) {
  if (t.dims.size() == 3) { *sb = t.dims[1] * t.dims[2]; *sh = d; *ss = t.dims[2]; }
  else { *sb = t.dims[1] * t.dims[2] * t.dims[3]; *sh = t.dims[2] * t.dims[3]; *ss = t.dims[3]; }
}

// The mask (input `port`, right-aligned broadcast to [B, H, Sq, Sk]), then the launch for Q's
// type and head size: what Attention and PackedAttention share once their strides are set.
Status run(LaunchContext& ctx, AttnArgs& a, size_t port, int64_t batch, int64_t d, DataType type) {
  for (const void* p : {a.q, a.k, a.v})
    if (!aligned_to(p, 16)) return ctx.fail("attention operands must be 16-byte aligned");
  for (int64_t s : {a.q_s, a.k_s, a.v_s, a.q_h, a.k_h, a.v_h, a.q_b, a.k_b, a.v_b})
    if (s % 8) return ctx.fail("attention operand strides must be multiples of 8 elements");
  if (ctx.has_input(port)) {
    const DeviceTensor& m = ctx.inputs[port];
    const size_t mr = m.dims.size();
    if (mr < 1 || mr > 4) return ctx.fail("attn_mask rank ", mr);
    const int64_t full[4] = {batch, a.heads, a.sq, a.sk};
    int64_t st[4] = {0, 0, 0, 0}, step = 1;
    for (size_t i = 0; i < mr; ++i) {
      const size_t di = mr - 1 - i, fi = 3 - i;
      const int64_t dim = m.dims[di];
      // ONNX pads a shorter last dim as masked; this kernel takes only the full key length there.
      if (fi == 3 ? dim != a.sk : (dim != 1 && dim != full[fi]))
        return ctx.fail("attn_mask ", dims_to_string(m.dims), " is not [.., Sk] broadcast to [B, H, Sq, Sk]");
      st[fi] = dim == 1 ? 0 : step;
      step *= dim;
    }
    a.mask = m.data;
    a.m_b = st[0]; a.m_h = st[1]; a.m_q = st[2]; a.m_k = st[3];
  }
  const int64_t bh = batch * a.heads;
  auto go = [&](auto tag) -> Status {
    using T = decltype(tag);
    switch (d) {
      case 32: return launch<T, 32>(ctx, a, bh);
      case 64: return launch<T, 64>(ctx, a, bh);
      case 128: return launch<T, 128>(ctx, a, bh);
      default: return ctx.fail("no CUDA attention kernel for head size ", d);
    }
  };
  if (type == DataType::kFloat16) return go(__half());
  if (type == DataType::kBFloat16) return go(__nv_bfloat16());
  return ctx.fail("no CUDA attention kernel for ", dtype_name(type));
}

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
  return run(ctx, a, 3, batch, d, ty.dtype);
}

// kiln.PackedAttention: QKV [B, S, 3*H*D] holds Q, K and V side by side; all three are read in
// place (base offsets 0, H*D, 2*H*D; sequence stride 3*H*D); the output is [B, S, H*D].
Status packed_attention(LaunchContext& ctx) {
  const DeviceTensor &tx = ctx.inputs[0], &ty = ctx.outputs[0];
  const int64_t heads = ctx.node.attr_int("num_heads", 0);
  if (tx.dims.size() != 3 || heads <= 0 || tx.dims[2] % (3 * heads))
    return ctx.fail("PackedAttention wants QKV [B, S, 3*H*D] and num_heads H, got ", dims_to_string(tx.dims));
  const int64_t e = tx.dims[2] / 3, d = e / heads, batch = tx.dims[0], s = tx.dims[1];
  if (ty.numel() == 0) return Status::ok();
  AttnArgs a{};
  const size_t esz = dtype_nbytes(tx.dtype, 1);
  a.q = tx.data;
  a.k = static_cast<const char*>(tx.data) + e * esz;
  a.v = static_cast<const char*>(tx.data) + 2 * e * esz;
  a.o = ty.data;
  a.heads = heads; a.sq = s; a.sk = s;
  a.scale = ctx.node.has_attr("scale") ? ctx.node.attr_float("scale", 1.f) : float(1.0 / std::sqrt(double(d)));
  a.q_b = a.k_b = a.v_b = s * 3 * e;
  a.q_h = a.k_h = a.v_h = d;
  a.q_s = a.k_s = a.v_s = 3 * e;
  a.o_b = s * e; a.o_h = d; a.o_s = e;
  return run(ctx, a, 1, batch, d, ty.dtype);
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

Support check_packed_attention(const Node& n) {
  if (n.inputs.empty() || !n.inputs[0]) return Support::no("QKV missing");
  const DataType t = n.inputs[0]->dtype;
  if (t != DataType::kFloat16 && t != DataType::kBFloat16) return Support::no("float16/bfloat16 only");
  if (n.inputs.size() > 1 && n.inputs[1] && n.inputs[1]->dtype != t) return Support::no("a boolean or other-typed mask");
  const Shape& x = n.inputs[0]->shape;
  const int64_t heads = n.attr_int("num_heads", 0);
  if (!x.rank_known() || x.rank() != 3 || !x[2].is_static() || heads <= 0 || x[2].value() % (3 * heads))
    return Support::no("QKV not [B, S, 3*H*D] with a static last dim");
  const int64_t d = x[2].value() / (3 * heads);
  if (d != 32 && d != 64 && d != 128) return Support::no("head size other than 32, 64, 128");
  return Support::yes();
}

}  // namespace

void register_cuda_attention_kernels(CudaKernelTable& t) {
  t.add({"", "Attention", "cuda.attention", attention, check_attention});
  t.add({"kiln", "PackedAttention", "cuda.attention", packed_attention, check_packed_attention});
}

}  // namespace kiln::cuda
