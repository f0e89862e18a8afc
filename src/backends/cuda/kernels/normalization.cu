// CUDA kernels of the normalization family. LayerNormalization, InstanceNormalization,
// GroupNormalization, MeanVarianceNormalization and LpNormalization all normalize groups of
// elements: one kernel takes a group per warp (short groups) or per block, caches up to 8
// elements per thread in registers (so BERT/ViT rows [B*S, 768] are read once), and computes
// the mean and variance in two passes in float. Contiguous groups are addressed as rows; MVN's
// and LpNorm's arbitrary axes use the strided layout of reduce_common.cuh.
// BatchNormalization (inference form) is a per-channel affine map, in its own kernel.
#include "backends/cuda/kernels/reduce_common.cuh"

namespace kiln::cuda {

namespace {

using namespace red;

enum class NM { kNorm, kMVN, kLp1, kLp2 };
constexpr int kCache = 8;  // elements per thread kept in registers

struct GroupArgs {
  int64_t groups, n;
  float eps;
  // Parameter index of element j of group g: (g % rmod) * rmul + (j / jdiv) % jmod, or j.
  bool per_j;
  int64_t rmod, rmul, jdiv, jmod;
  const void* scale;  // T, or null (1)
  const void* bias;   // T, or null (0)
  void* mean_out;     // optional LayerNorm outputs: float or T
  void* inv_out;
  bool stats_float;
  Strided kept, red;  // when not contiguous
};

template <bool kWarp>
__device__ __forceinline__ float all_sum(float v, float* smem) {
  if constexpr (kWarp) return warp_sum(v);
  else return block_sum(v, smem);
}

template <NM op, class T, bool kWarp, bool kContig>
__global__ void group_norm_kernel(const T* x, T* y, GroupArgs a) {
  __shared__ float smem[32];
  const int tid = kWarp ? (threadIdx.x & 31) : threadIdx.x;
  const int nthreads = kWarp ? 32 : blockDim.x;
  const int64_t first = kWarp ? blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5) : blockIdx.x;
  const int64_t step = kWarp ? int64_t(gridDim.x) * (blockDim.x >> 5) : gridDim.x;
  const int64_t n = a.n;
  const bool cached = n <= int64_t(nthreads) * kCache;
  const T* scale = static_cast<const T*>(a.scale);
  const T* bias = static_cast<const T*>(a.bias);
  for (int64_t g = first; g < a.groups; g += step) {
    const int64_t base = kContig ? g * n : a.kept.offset(g);
    auto off = [&](int64_t j) { return kContig ? j : a.red.offset(j); };
    float v[kCache];
    float s = 0.f;
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCache; ++k) {
        const int64_t j = tid + int64_t(k) * nthreads;
        v[k] = j < n ? float(ld(x, base + off(j))) : 0.f;
        if constexpr (op == NM::kLp1) s += fabsf(v[k]);
        else if constexpr (op == NM::kLp2) s += v[k] * v[k];
        else s += v[k];
      }
    } else {
      for (int64_t j = tid; j < n; j += nthreads) {
        const float e = ld(x, base + off(j));
        if constexpr (op == NM::kLp1) s += fabsf(e);
        else if constexpr (op == NM::kLp2) s += e * e;
        else s += e;
      }
    }
    s = all_sum<kWarp>(s, smem);
    float shift = 0.f, mul;
    if constexpr (op == NM::kLp1) mul = 1.f / s;
    else if constexpr (op == NM::kLp2) mul = 1.f / sqrtf(s);
    else {
      shift = s / float(n);
      float q = 0.f;  // second pass: sum of squared deviations
      if (cached) {
#pragma unroll
        for (int k = 0; k < kCache; ++k) {
          const int64_t j = tid + int64_t(k) * nthreads;
          const float d = v[k] - shift;
          q += j < n ? d * d : 0.f;
        }
      } else {
        for (int64_t j = tid; j < n; j += nthreads) {
          const float d = float(ld(x, base + off(j))) - shift;
          q += d * d;
        }
      }
      q = all_sum<kWarp>(q, smem) / float(n);
      mul = op == NM::kMVN ? 1.f / (sqrtf(q) + 1e-9f) : 1.f / sqrtf(q + a.eps);
      if (tid == 0 && a.mean_out) {
        if (a.stats_float) { static_cast<float*>(a.mean_out)[g] = shift; static_cast<float*>(a.inv_out)[g] = mul; }
        else { st(static_cast<T*>(a.mean_out), g, shift); st(static_cast<T*>(a.inv_out), g, mul); }
      }
    }
    auto emit = [&](int64_t j, float e) {
      float r = (e - shift) * mul;
      if constexpr (op == NM::kNorm) {
        const int64_t p = a.per_j ? j : (g % a.rmod) * a.rmul + (j / a.jdiv) % a.jmod;
        r = r * (scale ? float(ld(scale, p)) : 1.f) + (bias ? float(ld(bias, p)) : 0.f);
      }
      st(y, base + off(j), r);
    };
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCache; ++k) {
        const int64_t j = tid + int64_t(k) * nthreads;
        if (j < n) emit(j, v[k]);
      }
    } else {
      for (int64_t j = tid; j < n; j += nthreads) emit(j, ld(x, base + off(j)));
    }
  }
}

// LayerNormalization of 16-bit rows (BERT/ViT: [B*S, 768]) without statistics outputs: a warp
// per row, 16-byte loads (K per lane, n <= 256 K), the row kept in registers, warp shuffles
// only. The generic kernel above takes such rows with 2-byte loads and block-wide barriers,
// at a third of the memory bandwidth (H100, BERT-base b64: 28 us per layer, floor ~8 us).
template <class T, int K>
__global__ void __launch_bounds__(256) layer_norm_rows16(const T* __restrict__ x, T* __restrict__ y,
                                                         const T* __restrict__ scale, const T* __restrict__ bias,
                                                         int64_t rows, int n, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  float v[K][8];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (k * 32 + lane) * 8;
    uint4 raw = make_uint4(0, 0, 0, 0);
    if (c < n) raw = *reinterpret_cast<const uint4*>(xr + c);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) { v[k][i] = float(e[i]); s += v[k][i]; }
  }
  const float mean = warp_sum(s) / float(n);
  float q = 0.f;
#pragma unroll
  for (int k = 0; k < K; ++k)
    if ((k * 32 + lane) * 8 < n)
#pragma unroll
      for (int i = 0; i < 8; ++i) { const float d = v[k][i] - mean; q += d * d; }
  const float inv = rsqrtf(warp_sum(q) / float(n) + eps);
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (k * 32 + lane) * 8;
    if (c >= n) continue;
    const uint4 sr = *reinterpret_cast<const uint4*>(scale + c);
    uint4 br = make_uint4(0, 0, 0, 0);
    if (bias) br = *reinterpret_cast<const uint4*>(bias + c);
    const T* sc = reinterpret_cast<const T*>(&sr);
    const T* bi = reinterpret_cast<const T*>(&br);
    uint4 out;
    T* o = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = T((v[k][i] - mean) * inv * float(sc[i]) + float(bi[i]));
    *reinterpret_cast<uint4*>(yr + c) = out;
  }
}

// The warp-per-row kernel when it applies (16-bit type, n a multiple of 8 up to 4096, per-element
// scale/bias, no statistics outputs, 16-byte aligned); false: use the generic kernel.
template <class T>
bool layer_norm_fast(const LaunchContext& c, const GroupArgs& a) {
  if (a.n % 8 || a.n > 4096 || !a.per_j || !a.scale || a.mean_out || !aligned_to(c.inputs[0].data, 16) ||
      !aligned_to(c.outputs[0].data, 16) || !aligned_to(a.scale, 16) || (a.bias && !aligned_to(a.bias, 16)))
    return false;
  const T* x = c.inputs[0].as<T>();
  T* y = c.outputs[0].as<T>();
  const T* sc = static_cast<const T*>(a.scale);
  const T* bi = static_cast<const T*>(a.bias);
  const int n = int(a.n);
  const int64_t grid = (a.groups + 7) / 8;
  const int k = (n + 255) / 256;
#define KILN_LN_CASE(K) \
  case K: layer_norm_rows16<T, K><<<grid, 256, 0, c.stream>>>(x, y, sc, bi, a.groups, n, a.eps); return true;
  switch (k <= 4 ? k : k <= 6 ? 6 : k <= 8 ? 8 : k <= 12 ? 12 : 16) {
    KILN_LN_CASE(1) KILN_LN_CASE(2) KILN_LN_CASE(3) KILN_LN_CASE(4) KILN_LN_CASE(6) KILN_LN_CASE(8)
    KILN_LN_CASE(12) KILN_LN_CASE(16)
  }
#undef KILN_LN_CASE
  return false;
}

template <NM op, class T, bool kContig>
void launch_groups(const LaunchContext& c, const GroupArgs& a) {
  const T* x = c.inputs[0].as<T>();
  T* y = c.outputs[0].as<T>();
  if (a.n <= 32 * kCache) {
    const int64_t grid = std::min<int64_t>((a.groups + 7) / 8, 1 << 20);
    group_norm_kernel<op, T, true, kContig><<<grid, 256, 0, c.stream>>>(x, y, a);
  } else {
    const int threads = a.n <= 1024 ? 128 : a.n <= 2048 ? 256 : a.n <= 4096 ? 512 : 1024;
    const int64_t grid = std::min<int64_t>(a.groups, 1 << 20);
    group_norm_kernel<op, T, false, kContig><<<grid, threads, 0, c.stream>>>(x, y, a);
  }
}

template <NM op, bool kContig>
Status dispatch_groups(const LaunchContext& c, const GroupArgs& a) {
  if (a.groups == 0 || a.n == 0) return Status::ok();
  switch (c.inputs[0].dtype) {
    case DataType::kFloat32: launch_groups<op, float, kContig>(c, a); break;
    case DataType::kFloat16: launch_groups<op, __half, kContig>(c, a); break;
    case DataType::kBFloat16: launch_groups<op, __nv_bfloat16, kContig>(c, a); break;
    default: return c.fail("no CUDA kernel for type ", dtype_name(c.inputs[0].dtype));
  }
  return Status::ok();
}

GroupArgs rows(int64_t groups, int64_t n, float eps) {
  GroupArgs a{};
  a.groups = groups;
  a.n = n;
  a.eps = eps;
  a.rmod = 1; a.rmul = 0; a.jdiv = 1; a.jmod = 1;
  return a;
}

Status layer_norm(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = c.node.attr_int("axis", -1);
  if (axis < -rank || axis >= rank) return c.fail("axis ", axis, " is out of range for rank ", rank);
  if (axis < 0) axis += rank;
  int64_t groups = 1, n = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? groups : n) *= x.dims[d];
  GroupArgs a = rows(groups, n, c.node.attr_float("epsilon", 1e-5f));
  // scale and bias broadcast to the normalized dims: both must be a suffix of them (leading 1s
  // allowed), so element j uses parameter j % numel.
  int64_t pn = 0;
  for (size_t i : {size_t(1), size_t(2)}) {
    if (!c.has_input(i)) continue;
    const DeviceTensor& p = c.inputs[i];
    size_t lead = 0;
    while (lead < p.dims.size() && p.dims[lead] == 1) ++lead;
    const size_t k = p.dims.size() - lead;
    bool ok = k <= size_t(rank - axis);
    for (size_t q = 0; ok && q < k; ++q) ok = p.dims[lead + q] == x.dims[rank - k + q];
    if (!ok) return c.fail("input ", i, " does not broadcast as a suffix of the normalized shape");
    if (pn && pn != p.numel()) return c.fail("scale and bias of different sizes");
    pn = p.numel();
  }
  a.per_j = pn == n;
  a.jmod = pn ? pn : 1;
  a.scale = c.inputs[1].data;
  a.bias = c.has_input(2) ? c.inputs[2].data : nullptr;
  if (c.outputs.size() > 1 && c.outputs[1].data) a.mean_out = c.outputs[1].data;
  if (c.outputs.size() > 2 && c.outputs[2].data) a.inv_out = c.outputs[2].data;
  if (!a.mean_out || !a.inv_out) {  // write both or neither: point the missing one at scratch
    if (a.mean_out || a.inv_out) {
      if (c.workspace_bytes < size_t(groups) * 4) return c.fail("workspace too small for the statistics");
      if (!a.mean_out) a.mean_out = c.workspace; else a.inv_out = c.workspace;
    }
  }
  const DataType st = a.mean_out ? (c.outputs.size() > 1 && c.outputs[1].data ? c.outputs[1].dtype : c.outputs[2].dtype)
                                 : DataType::kFloat32;
  a.stats_float = st == DataType::kFloat32;
  if (groups > 0 && n > 0) {
    if (x.dtype == DataType::kFloat16 && layer_norm_fast<__half>(c, a)) return Status::ok();
    if (x.dtype == DataType::kBFloat16 && layer_norm_fast<__nv_bfloat16>(c, a)) return Status::ok();
  }
  return dispatch_groups<NM::kNorm, true>(c, a);
}

Status instance_norm(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  if (x.dims.size() < 2) return c.fail("input rank below 2");
  const int64_t ch = x.dims[1];
  const int64_t groups = x.dims[0] * ch;
  GroupArgs a = rows(groups, groups ? x.numel() / groups : 0, c.node.attr_float("epsilon", 1e-5f));
  if (c.inputs[1].numel() != ch || c.inputs[2].numel() != ch) return c.fail("scale/B must have C elements");
  a.per_j = false;
  a.rmod = ch; a.rmul = 1;
  a.scale = c.inputs[1].data;
  a.bias = c.inputs[2].data;
  return dispatch_groups<NM::kNorm, true>(c, a);
}

Status group_norm(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  if (x.dims.size() < 2) return c.fail("input rank below 2");
  const int64_t ng = c.node.attr_int("num_groups", 1);
  const int64_t nb = x.dims[0], ch = x.dims[1];
  if (ng <= 0 || ch % ng != 0) return c.fail(ch, " channels do not divide into ", ng, " groups");
  const int64_t spatial = nb * ch == 0 ? 0 : x.numel() / (nb * ch);
  GroupArgs a = rows(nb * ng, (ch / ng) * spatial, c.node.attr_float("epsilon", 1e-5f));
  const int64_t pn = c.inputs[1].numel();
  if ((pn != ch && pn != ng) || c.inputs[2].numel() != pn) return c.fail("scale/bias must have C or num_groups elements");
  a.per_j = false;
  a.rmod = ng;
  if (pn == ch && pn != ng) { a.rmul = ch / ng; a.jdiv = spatial ? spatial : 1; a.jmod = ch / ng; }
  else { a.rmul = 1; }
  a.scale = c.inputs[1].data;
  a.bias = c.inputs[2].data;
  return dispatch_groups<NM::kNorm, true>(c, a);
}

// Groups over an arbitrary axes mask (MVN, LpNorm): contiguous rows when the plan allows.
template <NM op>
Status masked(LaunchContext& c, const std::vector<bool>& mask) {
  const DeviceTensor& x = c.inputs[0];
  if (x.dims.size() > kMaxRank) return c.fail("rank above 8");
  AxisPlan p = plan_axes(x.dims, mask);
  GroupArgs a = rows(p.outputs, p.reduce, 0.f);
  if (p.simple && p.inner == 1) return dispatch_groups<op, true>(c, a);
  if (p.simple) {  // [outer, n, inner] as strided layouts
    p.kept = Strided{2, {p.outer, p.inner}, {p.reduce * p.inner, 1}};
    p.red = Strided{1, {p.reduce}, {p.inner}};
  }
  a.kept = p.kept;
  a.red = p.red;
  return dispatch_groups<op, false>(c, a);
}

Expected<std::vector<bool>> axes_mask(const LaunchContext& c, const std::vector<int64_t>& axes) {
  const int64_t r = static_cast<int64_t>(c.inputs[0].dims.size());
  std::vector<bool> mask(static_cast<size_t>(r), false);
  for (int64_t ax : axes) {
    if (ax < -r || ax >= r) return c.fail("axis ", ax, " is out of range for rank ", r);
    mask[static_cast<size_t>(ax < 0 ? ax + r : ax)] = true;
  }
  return mask;
}

Status mvn(LaunchContext& c) {
  KILN_ASSIGN_OR_RETURN(auto mask, axes_mask(c, c.node.attr_ints("axes", {0, 2, 3})));
  return masked<NM::kMVN>(c, mask);
}

Status lp_norm(LaunchContext& c) {
  const int64_t p = c.node.attr_int("p", 2);
  KILN_ASSIGN_OR_RETURN(auto mask, axes_mask(c, {c.node.attr_int("axis", -1)}));
  if (p == 1) return masked<NM::kLp1>(c, mask);
  if (p == 2) return masked<NM::kLp2>(c, mask);
  return c.fail("p must be 1 or 2, got ", p);
}

// BatchNormalization, inference: y = (x - mean[c]) * scale[c] / sqrt(var[c] + eps) + B[c].
template <class T>
__global__ void batch_norm_kernel(const T* x, T* y, const T* scale, const T* bias, const T* mean, const T* var,
                                  int64_t total, int64_t ch, int64_t spatial, float eps) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / spatial) % ch;
    const float a = float(ld(scale, c)) / sqrtf(float(ld(var, c)) + eps);
    st(y, i, (float(ld(x, i)) - float(ld(mean, c))) * a + float(ld(bias, c)));
  }
}

template <class T>
void launch_bn(const LaunchContext& c, int64_t total, int64_t ch, int64_t spatial, float eps) {
  batch_norm_kernel<T><<<cuda_grid_for(total, 256), 256, 0, c.stream>>>(
      c.inputs[0].as<T>(), c.outputs[0].as<T>(), c.inputs[1].as<T>(), c.inputs[2].as<T>(), c.inputs[3].as<T>(),
      c.inputs[4].as<T>(), total, ch, spatial, eps);
}

Status batch_norm(LaunchContext& c) {
  const DeviceTensor& x = c.inputs[0];
  const int64_t total = x.numel();
  const int64_t ch = x.dims.size() > 1 ? x.dims[1] : 1;
  if (total == 0) return Status::ok();
  const int64_t spatial = total / (x.dims[0] * ch);
  for (size_t i = 1; i < 5; ++i)
    if (c.inputs[i].numel() != ch) return c.fail("input ", i, " must have C elements");
  const float eps = c.node.attr_float("epsilon", 1e-5f);
  switch (x.dtype) {
    case DataType::kFloat32: launch_bn<float>(c, total, ch, spatial, eps); break;
    case DataType::kFloat16: launch_bn<__half>(c, total, ch, spatial, eps); break;
    case DataType::kBFloat16: launch_bn<__nv_bfloat16>(c, total, ch, spatial, eps); break;
    default: return c.fail("no CUDA kernel for type ", dtype_name(x.dtype));
  }
  return Status::ok();
}

// Parameters must share the input's float type (the kernels read them as T).
Support same_float_types(const Node& n, size_t first, size_t last) {
  if (n.inputs.empty() || !n.inputs[0]) return Support::no("no input");
  const DataType t = n.inputs[0]->dtype;
  Support s = float_or_int_type(t, false);
  if (!s.ok) return s;
  for (size_t i = first; i < last && i < n.inputs.size(); ++i)
    if (n.inputs[i] && n.inputs[i]->dtype != t) return Support::no("parameter type differs from the input's");
  return Support::yes();
}

Support check_layer_norm(const Node& n) {
  Support s = same_float_types(n, 1, 3);
  if (!s.ok) return s;
  if (n.inputs.size() < 2 || !n.inputs[1]) return Support::no("no scale");
  for (size_t k = 1; k < 3; ++k)
    if (n.has_output(k) && n.outputs[k]->dtype != DataType::kFloat32 && n.outputs[k]->dtype != n.inputs[0]->dtype)
      return Support::no("statistics output type");
  return Support::yes();
}
Support check_params3(const Node& n) {
  if (n.inputs.size() < 3 || !n.inputs[1] || !n.inputs[2]) return Support::no("missing scale/bias");
  return same_float_types(n, 1, 3);
}
Support check_batch_norm(const Node& n) {
  for (size_t k = 1; k < n.outputs.size(); ++k)
    if (n.outputs[k]) return Support::no("training outputs");
  if (n.opset >= 14 && n.attr_int("training_mode", 0) != 0) return Support::no("training_mode");
  if (n.opset < 9 && n.attr_int("spatial", 1) == 0) return Support::no("spatial=0");
  if (n.inputs.size() < 5) return Support::no("missing inputs");
  return same_float_types(n, 1, 5);
}
Support check_masked(const Node& n) {
  Support s = same_float_types(n, 1, 1);
  if (!s.ok) return s;
  if (n.op_type == "LpNormalization") {
    const int64_t p = n.attr_int("p", 2);
    if (p != 1 && p != 2) return Support::no("p other than 1 or 2");
  }
  return rank_at_most_8(n.inputs[0]);
}

}  // namespace

void register_cuda_normalization_kernels(CudaKernelTable& t) {
  t.add({"", "LayerNormalization", "cuda.normalization", layer_norm, check_layer_norm});
  t.add({"", "InstanceNormalization", "cuda.normalization", instance_norm, check_params3});
  t.add({"", "GroupNormalization", "cuda.normalization", group_norm, check_params3});
  t.add({"", "BatchNormalization", "cuda.normalization", batch_norm, check_batch_norm});
  t.add({"", "MeanVarianceNormalization", "cuda.normalization", mvn, check_masked});
  t.add({"", "LpNormalization", "cuda.normalization", lp_norm, check_masked});
}

}  // namespace kiln::cuda
