// CUDA kernels of QLinearConv and ConvInteger (1-3 spatial dims, 8-bit data): the int8
// tensor-core GEMM over an im2col (cuda.qconv.imma) or the direct kernel (cuda.qconv.direct).
// The arithmetic, the tactics and the zero-point algebra: qlinear_common.cuh.
#include "backends/cuda/kernels/qlinear_common.cuh"
#include "ir/ops/conv_window.h"

namespace kiln::cuda {

namespace {

// ---- direct kernel ---------------------------------------------------------------------------

struct ConvArgs {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* xz = nullptr;  // scalar, x's type; null: 0
  const void* wz = nullptr;  // 1 or m values, w's type; null: 0
  const int32_t* bias = nullptr;
  void* y = nullptr;
  bool xu8 = false, wu8 = false;
  int64_t nwz = 1;
  int64_t n = 0, c = 0, m = 0, groups = 1;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, p[3] = {0, 0, 0}, d[3] = {1, 1, 1};
  Requant q;
};

__global__ void qconv_direct(ConvArgs a) {
  const int64_t out_size = a.out[0] * a.out[1] * a.out[2];
  const int64_t total = a.n * a.m * out_size;
  const int64_t cg = a.c / a.groups, mg = a.m / a.groups;
  const int zx = a.xz ? ld8(a.xz, a.xu8, 0) : 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int64_t o2 = r % a.out[2]; r /= a.out[2];
    const int64_t o1 = r % a.out[1]; r /= a.out[1];
    const int64_t o0 = r % a.out[0]; r /= a.out[0];
    const int64_t m = r % a.m, nn = r / a.m;
    const int64_t g = m / mg;
    const int zw = a.wz ? ld8(a.wz, a.wu8, a.nwz == 1 ? 0 : m) : 0;
    int64_t acc = 0;
    for (int64_t ci = 0; ci < cg; ++ci) {
      const int64_t xc = (nn * a.c + g * cg + ci) * a.in[0];
      const int64_t wc = (m * cg + ci) * a.k[0];
      for (int64_t k0 = 0; k0 < a.k[0]; ++k0) {
        const int64_t i0 = o0 * a.s[0] - a.p[0] + k0 * a.d[0];
        if (i0 < 0 || i0 >= a.in[0]) continue;
        for (int64_t k1 = 0; k1 < a.k[1]; ++k1) {
          const int64_t i1 = o1 * a.s[1] - a.p[1] + k1 * a.d[1];
          if (i1 < 0 || i1 >= a.in[1]) continue;
          for (int64_t k2 = 0; k2 < a.k[2]; ++k2) {
            const int64_t i2 = o2 * a.s[2] - a.p[2] + k2 * a.d[2];
            if (i2 < 0 || i2 >= a.in[2]) continue;
            const int xv = ld8(a.x, a.xu8, ((xc + i0) * a.in[1] + i1) * a.in[2] + i2) - zx;
            const int wv = ld8(a.w, a.wu8, ((wc + k0) * a.k[1] + k1) * a.k[2] + k2) - zw;
            acc += int64_t(xv * wv);
          }
        }
      }
    }
    if (a.bias) acc += a.bias[m];
    store(a.q, a.y, i, acc, m);
  }
}

// im2col of rows [p0, p0 + pc) of the conv's output pixels (n, o0, o1, o2) into col[pc, kp]:
// signed input values, the signed zero point where the window is outside the input (so it adds
// nothing), 0 in the K padding.
__global__ void qconv_im2col(ConvArgs a, int64_t p0, int64_t pc, int64_t kk_real, int64_t kp, int zx_signed, int8_t* col) {
  const int64_t total = pc * kp;
  const int off = a.xu8 ? 128 : 0;
  const int64_t ksz = a.k[0] * a.k[1] * a.k[2];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t kk = i % kp, pl = i / kp;
    int v = 0;
    if (kk < kk_real) {
      int64_t p = p0 + pl;
      const int64_t o2 = p % a.out[2]; p /= a.out[2];
      const int64_t o1 = p % a.out[1]; p /= a.out[1];
      const int64_t o0 = p % a.out[0];
      const int64_t nn = p / a.out[0];
      const int64_t ci = kk / ksz, kr = kk % ksz;
      const int64_t k0 = kr / (a.k[1] * a.k[2]), k1 = (kr / a.k[2]) % a.k[1], k2 = kr % a.k[2];
      const int64_t i0 = o0 * a.s[0] - a.p[0] + k0 * a.d[0];
      const int64_t i1 = o1 * a.s[1] - a.p[1] + k1 * a.d[1];
      const int64_t i2 = o2 * a.s[2] - a.p[2] + k2 * a.d[2];
      const bool in = i0 >= 0 && i0 < a.in[0] && i1 >= 0 && i1 < a.in[1] && i2 >= 0 && i2 < a.in[2];
      v = in ? ld8(a.x, a.xu8, (((nn * a.c + ci) * a.in[0] + i0) * a.in[1] + i1) * a.in[2] + i2) - off : zx_signed;
    }
    col[i] = int8_t(v);
  }
}

// ---- convolutions ----------------------------------------------------------------------------

Expected<ConvArgs> conv_args(LaunchContext& c, const Slots& s) {
  const DeviceTensor &x = c.inputs[size_t(s.x)], &w = c.inputs[size_t(s.w)], &y = c.outputs[0];
  const Node& n = c.node;
  if (x.dims.size() < 3 || x.dims.size() > 5 || w.dims.size() != x.dims.size() || y.dims.size() != x.dims.size())
    return err("input, weights and output ranks do not fit a 1-3-D convolution");
  const std::vector<int64_t> in(x.dims.begin() + 2, x.dims.end());
  KILN_ASSIGN_OR_RETURN(Window win, resolve_window(n, in, conv_kernel_shape(n, w.dims), false));
  ConvArgs a;
  a.x = x.data;
  a.w = w.data;
  a.y = y.data;
  a.xu8 = x.dtype == DataType::kUInt8;
  a.wu8 = w.dtype == DataType::kUInt8;
  if (const DeviceTensor* z = opt(c, s.xz)) {
    if (z->numel() != 1) return err("x_zero_point must be a scalar");
    a.xz = z->data;
  }
  if (const DeviceTensor* z = opt(c, s.wz)) {
    a.wz = z->data;
    a.nwz = z->numel();
  }
  a.n = x.dims[0];
  a.c = x.dims[1];
  a.m = y.dims[1];
  a.groups = n.attr_int("group", 1);
  if (a.groups < 1 || a.c % a.groups || a.m % a.groups || w.dims[1] * a.groups != a.c)
    return err("channels do not fit group ", a.groups);
  if (a.nwz != 1 && a.nwz != a.m) return err("w_zero_point must have 1 or ", a.m, " elements");
  const size_t nd = win.nd, lead = 3 - nd;
  for (size_t i = 0; i < nd; ++i) {
    if (win.out[i] != y.dims[2 + i]) return err("output dims differ from the window's");
    a.in[lead + i] = win.in[i];
    a.out[lead + i] = win.out[i];
    a.k[lead + i] = win.kernel[i];
    a.s[lead + i] = win.strides[i];
    a.p[lead + i] = win.pads[i];
    a.d[lead + i] = win.dilations[i];
  }
  if (const DeviceTensor* b = opt(c, s.bias)) {
    if (b->numel() != a.m) return err("bias must have ", a.m, " elements");
    a.bias = b->as<const int32_t>();
  }
  a.q = requant_of(c, s, false);
  if (a.q.out != kOutInt32 && a.q.nws != 1 && a.q.nws != a.m) return err("w_scale must have 1 or ", a.m, " elements");
  return a;
}

Status conv_direct(LaunchContext& c, const ConvArgs& a) {
  const int64_t total = a.n * a.m * a.out[0] * a.out[1] * a.out[2];
  if (total) qconv_direct<<<cuda_grid_for(total, kThreads), kThreads, 0, c.stream>>>(a);
  return Status::ok();
}

Status run_qconv_direct(LaunchContext& c) {
  auto a = conv_args(c, slots_of(c.node));
  if (!a) return c.fail(a.status().message());
  return conv_direct(c, *a);
}

Status run_qconv_imma(LaunchContext& c) {
  const Slots s = slots_of(c.node);
  auto a = conv_args(c, s);
  if (!a) return c.fail(a.status().message());
  const int64_t out_size = a->out[0] * a->out[1] * a->out[2];
  const int64_t total = a->n * out_size;
  if (total == 0 || a->m == 0) return Status::ok();
  auto& st = c.state_as<QGemmState>();
  const Tensor *w = c.host_input(size_t(s.w)), *xz = c.host_input(size_t(s.xz)), *wz = c.host_input(size_t(s.wz));
  if (!st.prepared) {
    st.prepared = true;
    if (w && a->groups == 1 && (!c.has_input(size_t(s.xz)) || xz) && (!c.has_input(size_t(s.wz)) || wz)) {
      const int64_t k = w->numel() / a->m;
      const int off = a->wu8 ? 128 : 0;
      KILN_RETURN_IF_ERROR(prepare_weights(st, a->m, k, signed_zero_points(wz, a->wu8),
                                           [&](int64_t r, int64_t kk) { return int(w->get_as_double(r * k + kk)) - off; }));
      st.zx = (xz ? int(xz->get_as_double(0)) : 0) - (a->xu8 ? 128 : 0);
    }
  }
  if (!st.usable) {
    say_direct_once(c, st, {}, "weights or zero points not constant, or groups above 1");
    return conv_direct(c, *a);
  }
  const ConvArgs args = *a;
  KILN_ASSIGN_OR_RETURN(bool ran, run_imma(c, st, total, epilogue_of(st, a->bias, out_size, a->y, a->q), [&](int64_t p0, int64_t n, int8_t* col) {
    qconv_im2col<<<cuda_grid_for(n * st.kp, kThreads), kThreads, 0, c.stream>>>(args, p0, n, st.k, st.kp, st.zx, col);
  }));
  if (ran) return Status::ok();
  say_direct_once(c, st, c.inputs[size_t(s.x)].dims, "no cuBLASLt int8 algorithm, or the workspace holds too few rows");
  return conv_direct(c, *a);
}

Support check_conv_direct(const Node& n) { return check_common(n, true); }
Support check_conv_imma(const Node& n) { return check_imma(n, true); }

}  // namespace

void register_cuda_qlinear_conv_kernels(CudaKernelTable& t) {
  for (const char* op : {"QLinearConv", "ConvInteger"}) {
    t.add({"", op, "cuda.qconv.imma", run_qconv_imma, check_conv_imma});
    t.add({"", op, "cuda.qconv.direct", run_qconv_direct, check_conv_direct});
  }
}

}  // namespace kiln::cuda
