// CUDA kernels of Cast and CastLike between every numeric type and bool (float32, float16,
// bfloat16, double, int8..int64, uint8..uint64, bool), one vectorized map per type pair.
// Conversions mirror src/backends/cpu/kernels/cast.cc exactly: float to integer saturates (NaN
// -> 0), integer to integer wraps, anything to bool is x != 0, and a 16-bit float target is
// reached through its compute type (float), as the CPU does.
#include "backends/cuda/kernels/elementwise_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

template <class To>
struct CastF {
  template <class CF> __device__ calc_t<To> operator()(CF x) const {
    using CT = calc_t<To>;
    if constexpr (std::is_same_v<To, bool>) {
      return x != CF(0);
    } else if constexpr (is_fp_v<To>) {
      return static_cast<CT>(x);
    } else if constexpr (std::is_floating_point_v<CF>) {
      const double d = static_cast<double>(x);
      if (isnan(d)) return To(0);
      if (d <= static_cast<double>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
      if (d >= static_cast<double>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
      return static_cast<To>(d);
    } else {
      return static_cast<To>(x);
    }
  }
};

Status cast_to(LaunchContext& c, DataType to) {
  const DeviceTensor& x = c.inputs[0];
  const DeviceTensor& y = c.outputs[0];
  if (y.dtype != to) return c.fail("output has type ", dtype_name(y.dtype), ", expected ", dtype_name(to));
  if (x.dtype == to) {  // same type: a plain device copy
    if (y.data != x.data && y.nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(y.data, x.data, y.nbytes(), cudaMemcpyDeviceToDevice, c.stream));
    return Status::ok();
  }
  Status s;
  bool ok = false;
  visit<kAll>(x.dtype, [&](auto tf) {
    using From = typename decltype(tf)::type;
    ok = visit<kAll>(to, [&](auto tt) {
      using To = typename decltype(tt)::type;
      s = launch_map<To, From>(c, CastF<To>{}, y, {operand(x)});
    });
  });
  if (!ok) return c.fail("no CUDA kernel for a cast from ", dtype_name(x.dtype), " to ", dtype_name(to));
  return s;
}

Status run_cast(LaunchContext& c) { return cast_to(c, static_cast<DataType>(c.node.attr_int("to", 0))); }
Status run_cast_like(LaunchContext& c) { return cast_to(c, c.inputs[1].dtype); }

Support check_cast(const Node& n) {
  const DataType to = static_cast<DataType>(n.attr_int("to", 0));
  if ((type_bit(to) & kAll) == 0) return Support::no(std::string("cast to ") + dtype_name(to));
  return check_types(n, {{0, kAll}, {-1, kAll}});
}
Support check_cast_like(const Node& n) { return check_types(n, {{0, kAll}, {1, kAll}, {-1, kAll}}); }

}  // namespace

void register_cuda_elementwise_cast_kernels(CudaKernelTable& t) {
  t.add({"", "Cast", "cuda.elementwise", run_cast, check_cast});
  t.add({"", "CastLike", "cuda.elementwise", run_cast_like, check_cast_like});
}

}  // namespace kiln::cuda
