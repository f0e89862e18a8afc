// CUDA kernels of the elementwise family's multi-input ops: variadic Sum/Mean (float types) and
// Max/Min (numeric), any count of broadcast inputs folded in one pass (kMaxFold at a time) with
// the accumulator in float for float16/bfloat16; and Where (bool condition, any element type).
// Semantics: src/backends/cpu/kernels/elementwise_variadic.cc (numpy.maximum/minimum: NaN wins).
#include "backends/cuda/kernels/elementwise_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

template <class C> __device__ __forceinline__ bool nan_of(C v) {
  if constexpr (std::is_floating_point_v<C>) return isnan(v);
  else return false;
}

struct SumF {
  template <class C> __device__ C combine(C a, C b) const { return a + b; }
  template <class C> __device__ C finish(C a, int) const { return a; }
};
struct MeanF {
  template <class C> __device__ C combine(C a, C b) const { return a + b; }
  template <class C> __device__ C finish(C a, int n) const { return a / static_cast<C>(n); }
};
struct MaxF {
  template <class C> __device__ C combine(C a, C b) const { return (a < b || nan_of(b)) ? b : a; }
  template <class C> __device__ C finish(C a, int) const { return a; }
};
struct MinF {
  template <class C> __device__ C combine(C a, C b) const { return (b < a || nan_of(b)) ? b : a; }
  template <class C> __device__ C finish(C a, int) const { return a; }
};

template <class F, uint32_t Mask>
Status run_fold(LaunchContext& c) {
  std::vector<Operand> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.has_input(i)) return c.fail("input ", i, " is missing");
    if (c.inputs[i].dtype != c.inputs[0].dtype) return c.fail("input ", i, " has type ", dtype_name(c.inputs[i].dtype));
    in.push_back(operand(c.inputs[i]));
  }
  if (in.empty()) return c.fail("no inputs");
  Status s;
  bool ok = visit<Mask>(c.inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    s = launch_fold<T>(c, F{}, c.outputs[0], std::move(in));
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(c.inputs[0].dtype));
  return s;
}

template <uint32_t Mask>
Support check_fold(const Node& n) {
  if (n.inputs.empty()) return Support::no("no inputs");
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (!n.inputs[i]) return Support::no("an omitted input");
    if (n.inputs[i]->dtype != n.inputs[0]->dtype) return Support::no("inputs of different types");
  }
  return check_types(n, {{0, Mask}});
}

struct WhereF {
  template <class C> __device__ C operator()(bool cond, C a, C b) const { return cond ? a : b; }
};

Status run_where(LaunchContext& c) {
  const std::array<Operand, 3> in{operand(c.inputs[0]), operand(c.inputs[1]), operand(c.inputs[2])};
  Status s;
  bool ok = visit<kAll>(c.inputs[1].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    s = launch_map<T, bool, T, T>(c, WhereF{}, c.outputs[0], in);
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(c.inputs[1].dtype));
  return s;
}

Support check_where(const Node& n) { return check_types(n, {{0, kBool}, {1, kAll}, {2, kAll}}); }

}  // namespace

void register_cuda_elementwise_variadic_kernels(CudaKernelTable& t) {
  const char* k = "cuda.elementwise";
  t.add({"", "Sum", k, run_fold<SumF, kFloats>, check_fold<kFloats>});
  t.add({"", "Mean", k, run_fold<MeanF, kFloats>, check_fold<kFloats>});
  t.add({"", "Max", k, run_fold<MaxF, kNumeric>, check_fold<kNumeric>});
  t.add({"", "Min", k, run_fold<MinF, kNumeric>, check_fold<kNumeric>});
  t.add({"", "Where", k, run_where, check_where});
}

}  // namespace kiln::cuda
