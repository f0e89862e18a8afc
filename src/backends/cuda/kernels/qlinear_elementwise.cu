// CUDA kernels of ONNX Runtime's quantized elementwise ops (com.microsoft): QLinearAdd and
// QLinearMul (broadcasting, through the elementwise family's map) and QLinearConcat. They compute
// what the CPU kernels compute (src/backends/cpu/kernels/qlinear_binary.cc, qlinear_concat.cc),
// in the same float32 operations and order (no fused multiply-adds), so the bytes are equal:
//   Add: c = saturate(round_half_even(ra * a + rb * b + k)), ra = sa/sc, rb = sb/sc,
//        k = zc - ra*za - rb*zb
//   Mul: c = saturate(round_half_even(m * (a - za) * (b - zb) + zc)), m = sa*sb/sc
//   Concat: each input copied (its scale and zero point are the output's) or mapped through the
//        256-entry requantization table of ir/ops/qlinear_concat.h, built on the host.
// The scales and zero points must be constants (the host computes the factors); like the other
// integer kernels, these take layers only with KILN_CUDA_INT8=1 until their first GPU run.
#include <cstring>

#include "backends/cuda/kernels/elementwise_common.cuh"
#include "ir/ops/qlinear_concat.h"

namespace kiln::cuda {

namespace {

using namespace ew;

template <class T>
__device__ __forceinline__ float saturate(float v) {
  return fminf(fmaxf(rintf(v), float(std::numeric_limits<T>::min())), float(std::numeric_limits<T>::max()));
}

template <class T>
struct QAddF {
  float ra, rb, k;
  template <class C> __device__ float operator()(C a, C b) const {
    return saturate<T>(__fadd_rn(__fadd_rn(__fmul_rn(ra, float(a)), __fmul_rn(rb, float(b))), k));
  }
};

template <class T>
struct QMulF {
  float m, za, zb, zc;
  template <class C> __device__ float operator()(C a, C b) const {
    return saturate<T>(__fadd_rn(__fmul_rn(__fmul_rn(m, __fsub_rn(float(a), za)), __fsub_rn(float(b), zb)), zc));
  }
};

// A constant input's one value as float (0 for an omitted zero point).
float host_value(const LaunchContext& c, size_t i) {
  const Tensor* t = c.has_input(i) ? c.host_input(i) : nullptr;
  return t && t->numel() == 1 ? float(t->get_as_double(0)) : 0.f;
}

bool one_constant(const LaunchContext& c, size_t i) {
  const Tensor* t = c.host_input(i);
  return !c.has_input(i) || (t && t->numel() == 1);
}

template <bool kMul>
Status run_binary(LaunchContext& c) {
  for (size_t i : {1, 2, 4, 5, 6, 7})
    if (!one_constant(c, i)) return c.fail("scales and zero points must be constant single values");
  const float sa = host_value(c, 1), za = host_value(c, 2), sb = host_value(c, 4), zb = host_value(c, 5);
  const float sc = host_value(c, 6), zc = host_value(c, 7);
  if (!(sc != 0) || !std::isfinite(sc)) return c.fail("C_scale is ", sc);
  const DeviceTensor &a = c.inputs[0], &b = c.inputs[3], &y = c.outputs[0];
  Status s;
  const bool ok = visit<kI8 | kU8>(a.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (kMul) {
      s = launch_map<T, T, T>(c, QMulF<T>{sa * sb / sc, za, zb, zc}, y, {operand(a), operand(b)});
    } else {
      const float ra = sa / sc, rb = sb / sc;
      s = launch_map<T, T, T>(c, QAddF<T>{ra, rb, zc - ra * za - rb * zb}, y, {operand(a), operand(b)});
    }
  });
  if (!ok) return c.fail("A must be int8 or uint8");
  return s;
}

struct Table {
  uint8_t v[256];
};

// out[o * inner + offset + e] = table[in[o * block + e]] (or the byte itself when copy).
__global__ void concat_block(const uint8_t* in, uint8_t* out, int64_t outer, int64_t block, int64_t inner, int64_t offset,
                             Table t, bool copy) {
  const int64_t n = outer * block;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = i / block, e = i % block;
    const uint8_t x = in[i];
    out[o * inner + offset + e] = copy ? x : t.v[x];
  }
}

Status run_concat(LaunchContext& c) {
  const size_t n = c.inputs.size();
  for (size_t i = 0; i < n; ++i)
    if (i % 3 != 2 && !one_constant(c, i)) return c.fail("scales and zero points must be constant single values");
  const float ys = host_value(c, 0);
  if (!(ys != 0) || !std::isfinite(ys)) return c.fail("Y_scale is ", ys);
  const int yz = int(host_value(c, 1));
  const DeviceTensor& y = c.outputs[0];
  const bool s8 = y.dtype == DataType::kInt8;
  const int64_t rank = int64_t(y.dims.size());
  int64_t axis = c.node.attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return c.fail("axis out of range");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= y.dims[size_t(d)];
  for (int64_t d = axis; d < rank; ++d) inner *= y.dims[size_t(d)];
  int64_t offset = 0;
  for (size_t i = 2; i + 1 < n; i += 3) {
    const DeviceTensor& x = c.inputs[i];
    const float xs = host_value(c, i + 1);
    const int xz = int(host_value(c, i + 2));
    const bool copy = xs == ys && xz == yz;
    Table t{};
    if (!copy) {
      const auto table = s8 ? qlinear_concat_table<int8_t>(xs, xz, ys, yz) : qlinear_concat_table<uint8_t>(xs, xz, ys, yz);
      std::memcpy(t.v, table.data(), sizeof t.v);
    }
    const int64_t block = outer ? x.numel() / outer : 0;
    if (outer * block)
      concat_block<<<cuda_grid_for(outer * block, kThreads), kThreads, 0, c.stream>>>(
          x.as<const uint8_t>(), y.as<uint8_t>(), outer, block, inner, offset, t, copy);
    offset += block;
  }
  return Status::ok();
}

bool constant_input(const Node& n, size_t i) { return i >= n.inputs.size() || !n.inputs[i] || n.inputs[i]->initializer; }

Support check_binary(const Node& n) {
  if (Support g = cuda_int8_gate(); !g.ok) return g;
  if (n.inputs.size() < 7) return Support::no("missing inputs");
  for (size_t i : {1, 2, 4, 5, 6, 7})
    if (!constant_input(n, i)) return Support::no("scales and zero points that are not constants");
  return check_types(n, {{0, kI8 | kU8}, {3, kI8 | kU8}, {-1, kI8 | kU8}});
}

Support check_concat(const Node& n) {
  if (Support g = cuda_int8_gate(); !g.ok) return g;
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (i % 3 != 2 && !constant_input(n, i)) return Support::no("scales and zero points that are not constants");
  return check_types(n, {{-1, kI8 | kU8}});
}

}  // namespace

void register_cuda_qlinear_elementwise_kernels(CudaKernelTable& t) {
  t.add({"com.microsoft", "QLinearAdd", "cuda.qlinear_elementwise", run_binary<false>, check_binary});
  t.add({"com.microsoft", "QLinearMul", "cuda.qlinear_elementwise", run_binary<true>, check_binary});
  t.add({"com.microsoft", "QLinearConcat", "cuda.qlinear_elementwise", run_concat, check_concat});
}

}  // namespace kiln::cuda
