// CUDA kernels of the data_movement family, part 5: Resize (and Upsample), nearest (every
// nearest_mode, moving bytes so every type works) and linear (float types, accumulated in
// float), with the half_pixel / pytorch_half_pixel / align_corners / asymmetric /
// tf_half_pixel_for_nn coordinate transforms. Each output element computes its source taps on
// the device with the CPU kernel's double-precision coordinate math (cpu/kernels/resize.cc),
// so nearest picks the same sample and linear the same weights. Axes the resize leaves alone
// (same size, scale 1) cost nothing; cubic, antialias, tf_crop_and_resize, `axes` and
// keep_aspect_ratio_policy run on the CPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "backends/cuda/kernels/data_movement_common.h"

namespace kiln::cuda {
namespace dm {

namespace {

enum Ctm : int { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn };
enum NearestMode : int { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct ResizeArgs {
  int rank, ctm, nearest_mode;
  bool linear, legacy, exclude_outside;
  int64_t out_dims[kMaxRank], in_dims[kMaxRank], in_strides[kMaxRank];
  double scale[kMaxRank];
  bool active[kMaxRank];  // the axis is resampled (else output coordinate = input coordinate)
};

// One axis' taps: up to two input indices with weights (nearest uses the first only).
struct AxisTaps {
  int64_t i0, i1;
  float w0, w1;
};

__device__ AxisTaps axis_taps(const ResizeArgs& a, int d, int64_t x) {
  const int64_t in = a.in_dims[d];
  const double scale = a.scale[d], out_len = scale * double(in);
  double xo;
  switch (a.ctm) {
    case kAlignCorners: xo = out_len == 1 ? 0.0 : double(x) * double(in - 1) / (out_len - 1); break;
    case kAsymmetric: xo = double(x) / scale; break;
    case kTfHalfPixelForNn: xo = (double(x) + 0.5) / scale; break;
    case kPytorchHalfPixel: xo = out_len == 1 ? -0.5 : (double(x) + 0.5) / scale - 0.5; break;
    default: xo = (double(x) + 0.5) / scale - 0.5; break;
  }
  if (!isfinite(xo)) return {0, 0, 0.f, 0.f};
  xo = fmin(fmax(xo, -double(in) - 4), double(in) + 4);
  // The reference keeps the ratio in (0, 1]: an integral coordinate counts as 1 past its left neighbour.
  const double fl = floor(xo);
  const bool integral = xo == fl;
  const int64_t lo = integral ? int64_t(xo) - 1 : int64_t(fl);
  const double r = integral ? 1.0 : xo - fl;
  int64_t first = lo;
  double w0 = 1, w1 = 0;
  if (!a.linear) {
    bool up;
    if (integral) up = true;
    else if (a.legacy) up = scale < 1;
    else
      up = a.nearest_mode == kCeil || (a.nearest_mode == kRoundPreferFloor && r > 0.5) ||
           (a.nearest_mode == kRoundPreferCeil && r >= 0.5);
    first = up ? lo + 1 : lo;
  } else {
    w0 = 1 - r;
    w1 = r;
  }
  if (a.exclude_outside) {
    if (first < 0 || first >= in) w0 = 0;
    if (a.linear && (first + 1 < 0 || first + 1 >= in)) w1 = 0;
    const double sum = w0 + w1;
    if (sum != 0) { w0 /= sum; w1 /= sum; }
  }
  auto clampi = [in](int64_t i) { return i < 0 ? int64_t(0) : (i > in - 1 ? in - 1 : i); };
  return {clampi(first), clampi(first + 1), float(w0), float(w1)};
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

// Decomposes output element i: the input offset of its inactive axes, and the taps of its active ones.
__device__ __forceinline__ int gather_taps(const ResizeArgs& a, int64_t i, int64_t* base, int* axes, AxisTaps* taps) {
  int64_t rem = i, off = 0;
  int na = 0;
  for (int d = a.rank - 1; d >= 0; --d) {
    const int64_t q = rem / a.out_dims[d], x = rem - q * a.out_dims[d];
    rem = q;
    if (!a.active[d]) { off += x * a.in_strides[d]; continue; }
    axes[na] = d;
    taps[na++] = axis_taps(a, d, x);
  }
  *base = off;
  return na;
}

template <class U>
__global__ void resize_nearest_kernel(const U* __restrict__ x, U* __restrict__ y, int64_t total, ResizeArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off;
    int axes[kMaxRank];
    AxisTaps taps[kMaxRank];
    const int na = gather_taps(a, i, &off, axes, taps);
    bool zero = false;  // exclude_outside dropped the only tap
    for (int k = 0; k < na; ++k) {
      off += taps[k].i0 * a.in_strides[axes[k]];
      zero = zero || taps[k].w0 == 0.f;
    }
    if (zero) {
      U z;
      memset(&z, 0, sizeof(U));
      y[i] = z;
    } else {
      y[i] = x[off];
    }
  }
}

// Linear: the product of the per-axis weights over the 2^na corners (4 for the usual 2-D case).
template <class T>
__global__ void resize_linear_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t total, ResizeArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t base;
    int axes[kMaxRank];
    AxisTaps taps[kMaxRank];
    const int na = gather_taps(a, i, &base, axes, taps);
    float acc = 0.f;
    for (int m = 0; m < (1 << na); ++m) {
      int64_t off = base;
      float w = 1.f;
      for (int k = 0; k < na; ++k) {
        const bool hi = (m >> k) & 1;
        off += (hi ? taps[k].i1 : taps[k].i0) * a.in_strides[axes[k]];
        w *= hi ? taps[k].w1 : taps[k].w0;
      }
      if (w != 0.f) acc += w * to_f(x[off]);
    }
    y[i] = from_f<T>(acc);
  }
}

bool legacy_of(const Node& n) { return n.op_type == "Upsample" || n.opset < 11; }

std::string mode_of(const Node& n) {
  std::string m = n.attr_string("mode", "nearest");
  return m == "bilinear" ? "linear" : m;
}

// The per-axis scales: the given scales (read through float, as the CPU does), or sizes / input dims.
Expected<std::vector<double>> scales_of(const LaunchContext& c) {
  const Node& n = c.node;
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  std::vector<double> s;
  if (n.op_type == "Upsample" && n.opset < 9) {
    for (float f : n.attr_floats("scales")) s.push_back(f);
  } else {
    const size_t si = (n.op_type == "Resize" && n.opset >= 11) ? 2 : 1;
    if (c.has_input(si) && c.inputs[si].numel() > 0) {
      const Tensor* t = c.host_inputs[si];
      if (!t) return c.fail("scales have no host value when the engine runs");
      for (int64_t i = 0; i < t->numel(); ++i) s.push_back(float(t->get_as_double(i)));
    } else {
      for (size_t d = 0; d < y.dims.size(); ++d)
        s.push_back(x.dims[d] == 0 ? 1.0 : double(y.dims[d]) / double(x.dims[d]));
    }
  }
  if (s.size() != x.dims.size()) return c.fail("expected ", x.dims.size(), " scales, got ", s.size());
  return s;
}

Status resize(LaunchContext& c) {
  const DeviceTensor &x = c.inputs[0], &y = c.outputs[0];
  const Node& n = c.node;
  const size_t rank = x.dims.size();
  if (rank > size_t(kMaxRank) || y.dims.size() != rank) return c.fail("rank above ", kMaxRank);
  KILN_ASSIGN_OR_RETURN(std::vector<double> scales, scales_of(c));
  const int64_t total = y.numel();
  if (total == 0 || x.numel() == 0) return Status::ok();
  ResizeArgs a{};
  a.rank = int(rank);
  a.linear = mode_of(n) == "linear";
  a.legacy = legacy_of(n);
  const std::string ctm = a.legacy ? "asymmetric" : n.attr_string("coordinate_transformation_mode", "half_pixel");
  a.ctm = ctm == "pytorch_half_pixel" ? kPytorchHalfPixel
          : ctm == "align_corners"    ? kAlignCorners
          : ctm == "asymmetric"       ? kAsymmetric
          : ctm == "tf_half_pixel_for_nn" ? kTfHalfPixelForNn
                                          : kHalfPixel;
  const std::string nm = n.attr_string("nearest_mode", "round_prefer_floor");
  a.nearest_mode = nm == "round_prefer_ceil" ? kRoundPreferCeil : nm == "floor" ? kFloor : nm == "ceil" ? kCeil : kRoundPreferFloor;
  a.exclude_outside = !a.legacy && n.attr_int("exclude_outside", 0) != 0;
  std::vector<int64_t> st = contiguous_strides(x.dims);
  for (size_t d = 0; d < rank; ++d) {
    a.out_dims[d] = y.dims[d];
    a.in_dims[d] = x.dims[d];
    a.in_strides[d] = st[d];
    a.scale[d] = scales[d];
    // Every supported transform but tf_half_pixel_for_nn maps x to x at scale 1 on an unchanged axis.
    a.active[d] = !(x.dims[d] == y.dims[d] && scales[d] == 1.0 && a.ctm != kTfHalfPixelForNn);
  }
  const int64_t grid = cuda_grid_for(total, kThreads);
  if (!a.linear) {
    switch (dtype_size(y.dtype)) {
      case 1: resize_nearest_kernel<uint8_t><<<grid, kThreads, 0, c.stream>>>(x.as<uint8_t>(), y.as<uint8_t>(), total, a); break;
      case 2: resize_nearest_kernel<uint16_t><<<grid, kThreads, 0, c.stream>>>(x.as<uint16_t>(), y.as<uint16_t>(), total, a); break;
      case 4: resize_nearest_kernel<uint32_t><<<grid, kThreads, 0, c.stream>>>(x.as<uint32_t>(), y.as<uint32_t>(), total, a); break;
      case 8:
        resize_nearest_kernel<unsigned long long>
            <<<grid, kThreads, 0, c.stream>>>(x.as<unsigned long long>(), y.as<unsigned long long>(), total, a);
        break;
      default: return c.fail("element size not supported");
    }
    return Status::ok();
  }
  switch (y.dtype) {
    case DataType::kFloat32: resize_linear_kernel<float><<<grid, kThreads, 0, c.stream>>>(x.as<float>(), y.as<float>(), total, a); break;
    case DataType::kFloat16: resize_linear_kernel<__half><<<grid, kThreads, 0, c.stream>>>(x.as<__half>(), y.as<__half>(), total, a); break;
    case DataType::kBFloat16:
      resize_linear_kernel<__nv_bfloat16><<<grid, kThreads, 0, c.stream>>>(x.as<__nv_bfloat16>(), y.as<__nv_bfloat16>(), total, a);
      break;
    default: return c.fail("linear Resize of type ", dtype_name(y.dtype));
  }
  return Status::ok();
}

Support check_resize(const Node& n) {
  Support s = byte_types(n);
  if (!s.ok) return s;
  const std::string mode = mode_of(n);
  if (mode != "nearest" && mode != "linear") return Support::no("Resize mode " + mode);
  DataType t = n.outputs[0]->dtype;
  if (mode == "linear" && t != DataType::kFloat32 && t != DataType::kFloat16 && t != DataType::kBFloat16)
    return Support::no("linear Resize of a non-float type");
  if (!legacy_of(n)) {
    const std::string ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
    if (ctm != "half_pixel" && ctm != "pytorch_half_pixel" && ctm != "align_corners" && ctm != "asymmetric" &&
        ctm != "tf_half_pixel_for_nn")
      return Support::no("coordinate_transformation_mode " + ctm);
    if (n.attr_int("antialias", 0) != 0) return Support::no("antialias");
    if (n.has_attr("axes")) return Support::no("axes attribute");
    if (n.attr_string("keep_aspect_ratio_policy", "stretch") != "stretch") return Support::no("keep_aspect_ratio_policy");
  }
  const Value* x = n.inputs[0];
  if (!x->shape.rank_known() || x->shape.rank() > size_t(kMaxRank)) return Support::no("rank unknown or above 8");
  return Support::yes();
}

}  // namespace

void register_resize_kernels(CudaKernelTable& t) {
  t.add({"", "Resize", "cuda.data_movement", resize, check_resize});
  t.add({"", "Upsample", "cuda.data_movement", resize, check_resize});
}

}  // namespace dm
}  // namespace kiln::cuda
