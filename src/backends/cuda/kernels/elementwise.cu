// CUDA kernels of the elementwise family's broadcasting binary ops: arithmetic (Add Sub Mul Div
// Mod Pow), BitShift and Bitwise*, logic (And Or Xor), comparisons; plus the host half of the
// shared machinery (elementwise_common.cuh) and the family's registration. Unary math, the
// activations, the variadic ops and Cast live in elementwise_*.cu. Semantics follow the CPU
// kernels in src/backends/cpu/kernels/elementwise.cc (integer division by zero gives 0, Python
// modulo unless fmod=1, Pow computed in double for integer bases and saturated).
#include "backends/cuda/kernels/elementwise_common.cuh"

namespace kiln::cuda {

namespace ew {

Support check_types(const Node& n, std::initializer_list<std::pair<int, uint32_t>> want) {
  if (!n.has_output(0)) return Support::no("no output");
  for (const auto& [i, mask] : want) {
    const Value* v = i < 0 ? n.outputs[0] : n.has_input(size_t(i)) ? n.inputs[size_t(i)] : nullptr;
    if (!v) continue;  // an omitted optional input
    if ((type_bit(v->dtype) & mask) == 0)
      return Support::no(std::string("element type ") + dtype_name(v->dtype) +
                         (i < 0 ? std::string(" of the output") : " of input " + std::to_string(i)));
  }
  const Value* out = n.outputs[0];
  if (out->shape.rank_known() && out->shape.rank() > size_t(kMaxRank))
    return Support::no("rank " + std::to_string(out->shape.rank()) + " is above the CUDA kernel's limit of 8");
  return Support::yes();
}

bool make_bcast(const std::vector<int64_t>& out, const std::vector<const std::vector<int64_t>*>& in, int* rank,
                int64_t* dims, int64_t (*strides)[kMaxRank]) {
  const size_t r = out.size(), n = in.size();
  std::vector<std::vector<int64_t>> st(n, std::vector<int64_t>(r, 0));
  for (size_t k = 0; k < n; ++k) {
    const std::vector<int64_t>& d = *in[k];
    const size_t lead = r - d.size();
    int64_t stride = 1;
    for (size_t j = r; j-- > lead;) {
      const int64_t dim = d[j - lead];
      st[k][j] = dim == 1 ? 0 : stride;
      stride *= dim;
    }
  }
  // Outer to inner: a dim joins the previous one when every operand steps through both as one.
  std::vector<int64_t> md;
  std::vector<std::vector<int64_t>> ms(n);
  for (size_t j = 0; j < r; ++j) {
    if (out[j] == 1) continue;
    bool merge = !md.empty();
    for (size_t k = 0; k < n && merge; ++k) merge = ms[k].back() == st[k][j] * out[j];
    if (merge) {
      md.back() *= out[j];
      for (size_t k = 0; k < n; ++k) ms[k].back() = st[k][j];
      continue;
    }
    md.push_back(out[j]);
    for (size_t k = 0; k < n; ++k) ms[k].push_back(st[k][j]);
  }
  if (md.size() > size_t(kMaxRank)) return false;
  *rank = static_cast<int>(md.size());
  for (size_t j = 0; j < md.size(); ++j) {
    dims[j] = md[j];
    for (size_t k = 0; k < n; ++k) strides[k][j] = ms[k][j];
  }
  return true;
}

std::vector<int64_t> legacy_rhs_dims(const LaunchContext& c) {
  std::vector<int64_t> b = c.inputs[1].dims;
  if (c.node.opset >= 7 || !c.node.has_attr("axis")) return b;
  const int64_t ra = static_cast<int64_t>(c.inputs[0].dims.size());
  int64_t axis = c.node.attr_int("axis", 0);
  if (axis < 0) axis += ra;
  const int64_t pad = ra - axis - static_cast<int64_t>(b.size());
  if (axis < 0 || pad <= 0) return b;
  b.resize(b.size() + size_t(pad), 1);
  return b;
}

}  // namespace ew

namespace {

using namespace ew;

struct AddF { template <class C> __device__ C operator()(C a, C b) const { return C(a + b); } };
struct SubF { template <class C> __device__ C operator()(C a, C b) const { return C(a - b); } };
struct MulF { template <class C> __device__ C operator()(C a, C b) const { return C(a * b); } };
struct DivF {
  template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) {
      if (b == 0) return C(0);  // undefined in ONNX; 0 rather than a trap
      if constexpr (std::is_signed_v<C>) {
        using U = std::make_unsigned_t<C>;
        if (b == C(-1)) return C(U(0) - U(a));  // INT_MIN / -1 wraps
      }
      return C(a / b);
    } else {
      return a / b;
    }
  }
};

struct ModF {
  bool fmod = false;
  ModF() = default;
  explicit ModF(const Node& n) : fmod(n.attr_int("fmod", 0) != 0) {}
  template <class C> __device__ C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) {
      if (b == 0) return C(0);
      if constexpr (std::is_signed_v<C>) {
        if (b == C(-1)) return C(0);  // also avoids the INT_MIN % -1 trap
        C r = C(a % b);
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = C(r + b);  // Python: the divisor's sign
        return r;
      } else {
        return C(a % b);
      }
    } else {
      C r;
      if constexpr (std::is_same_v<C, double>) r = ::fmod(a, b);
      else r = fmodf(a, b);
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    }
  }
};

// Float bases compute in their own precision (powf for float/16-bit); integer bases in double,
// saturated to the base's range (NaN -> 0), as the CPU kernel does.
struct PowF {
  template <class CB, class CE> __device__ CB operator()(CB a, CE e) const {
    if constexpr (std::is_same_v<CB, float>) {
      return powf(a, static_cast<float>(e));
    } else if constexpr (std::is_same_v<CB, double>) {
      return ::pow(a, static_cast<double>(e));
    } else {
      double r = ::pow(static_cast<double>(a), static_cast<double>(e));
      if (isnan(r)) return CB(0);
      const double lo = static_cast<double>(std::numeric_limits<CB>::lowest());
      const double hi = static_cast<double>(std::numeric_limits<CB>::max());
      if (r <= lo) return std::numeric_limits<CB>::lowest();
      if (r >= hi) return std::numeric_limits<CB>::max();
      return static_cast<CB>(r);
    }
  }
};

struct BitShiftF {
  bool left = false;
  BitShiftF() = default;
  explicit BitShiftF(const Node& n) : left(n.attr_string("direction", "") == "LEFT") {}
  template <class C> __device__ C operator()(C a, C b) const {
    if (b >= C(sizeof(C) * 8)) return C(0);  // shifting by the width or more is undefined in C++
    return C(left ? a << b : a >> b);
  }
};
struct BitAndF { template <class C> __device__ C operator()(C a, C b) const { return C(a & b); } };
struct BitOrF { template <class C> __device__ C operator()(C a, C b) const { return C(a | b); } };
struct BitXorF { template <class C> __device__ C operator()(C a, C b) const { return C(a ^ b); } };

struct AndF { __device__ bool operator()(bool a, bool b) const { return a && b; } };
struct OrF { __device__ bool operator()(bool a, bool b) const { return a || b; } };
struct XorF { __device__ bool operator()(bool a, bool b) const { return a != b; } };

struct EqF { template <class C> __device__ bool operator()(C a, C b) const { return a == b; } };
struct LtF { template <class C> __device__ bool operator()(C a, C b) const { return a < b; } };
struct GtF { template <class C> __device__ bool operator()(C a, C b) const { return a > b; } };
struct LeF { template <class C> __device__ bool operator()(C a, C b) const { return a <= b; } };
struct GeF { template <class C> __device__ bool operator()(C a, C b) const { return a >= b; } };

// Output type = input type (Bool = false) or bool (comparisons and logic).
template <class F, uint32_t Mask, bool Bool = false>
Status run_binary(LaunchContext& c) {
  const F f = make_functor<F>(c.node);
  const std::array<Operand, 2> in{operand(c.inputs[0]), Operand{c.inputs[1].data, legacy_rhs_dims(c)}};
  Status s;
  bool ok = visit<Mask>(c.inputs[0].dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Out = std::conditional_t<Bool, bool, T>;
    s = launch_map<Out, T, T>(c, f, c.outputs[0], in);
  });
  if (!ok) return c.fail("no CUDA kernel for type ", dtype_name(c.inputs[0].dtype));
  return s;
}

template <uint32_t Mask>
Support check_binary(const Node& n) {
  return check_types(n, {{0, Mask}, {1, Mask}});
}

constexpr uint32_t kPowBase = kFloats | kI32 | kI64;
constexpr uint32_t kPowExp = kFloats | kI32 | kI64 | kU32 | kU64;

Status run_pow(LaunchContext& c) {
  const std::array<Operand, 2> in{operand(c.inputs[0]), Operand{c.inputs[1].data, legacy_rhs_dims(c)}};
  Status s;
  bool ok = false;
  visit<kPowBase>(c.inputs[0].dtype, [&](auto tb) {
    using B = typename decltype(tb)::type;
    ok = visit<kPowExp>(c.inputs[1].dtype, [&](auto te) {
      using E = typename decltype(te)::type;
      s = launch_map<B, B, E>(c, PowF{}, c.outputs[0], in);
    });
  });
  if (!ok) return c.fail("no CUDA kernel for Pow of ", dtype_name(c.inputs[0].dtype), " by ", dtype_name(c.inputs[1].dtype));
  return s;
}
Support check_pow(const Node& n) { return check_types(n, {{0, kPowBase}, {1, kPowExp}}); }

Support check_bitshift(const Node& n) {
  const std::string d = n.attr_string("direction", "");
  if (d != "LEFT" && d != "RIGHT") return Support::no("BitShift direction '" + d + "'");
  return check_binary<kUnsigned>(n);
}

}  // namespace

void register_cuda_elementwise_unary_kernels(CudaKernelTable& t);
void register_cuda_elementwise_activation_kernels(CudaKernelTable& t);
void register_cuda_elementwise_variadic_kernels(CudaKernelTable& t);
void register_cuda_elementwise_cast_kernels(CudaKernelTable& t);

void register_cuda_elementwise_kernels(CudaKernelTable& t) {
  const char* k = "cuda.elementwise";
  t.add({"", "Add", k, run_binary<AddF, kNumeric>, check_binary<kNumeric>});
  t.add({"", "Sub", k, run_binary<SubF, kNumeric>, check_binary<kNumeric>});
  t.add({"", "Mul", k, run_binary<MulF, kNumeric>, check_binary<kNumeric>});
  t.add({"", "Div", k, run_binary<DivF, kNumeric>, check_binary<kNumeric>});
  t.add({"", "Mod", k, run_binary<ModF, kNumeric>, check_binary<kNumeric>});
  t.add({"", "Pow", k, run_pow, check_pow});
  t.add({"", "BitShift", k, run_binary<BitShiftF, kUnsigned>, check_bitshift});
  t.add({"", "BitwiseAnd", k, run_binary<BitAndF, kInts>, check_binary<kInts>});
  t.add({"", "BitwiseOr", k, run_binary<BitOrF, kInts>, check_binary<kInts>});
  t.add({"", "BitwiseXor", k, run_binary<BitXorF, kInts>, check_binary<kInts>});
  t.add({"", "And", k, run_binary<AndF, kBool, true>, check_binary<kBool>});
  t.add({"", "Or", k, run_binary<OrF, kBool, true>, check_binary<kBool>});
  t.add({"", "Xor", k, run_binary<XorF, kBool, true>, check_binary<kBool>});
  t.add({"", "Equal", k, run_binary<EqF, kAll, true>, check_binary<kAll>});
  t.add({"", "Less", k, run_binary<LtF, kNumeric, true>, check_binary<kNumeric>});
  t.add({"", "Greater", k, run_binary<GtF, kNumeric, true>, check_binary<kNumeric>});
  t.add({"", "LessOrEqual", k, run_binary<LeF, kNumeric, true>, check_binary<kNumeric>});
  t.add({"", "GreaterOrEqual", k, run_binary<GeF, kNumeric, true>, check_binary<kNumeric>});
  register_cuda_elementwise_unary_kernels(t);
  register_cuda_elementwise_activation_kernels(t);
  register_cuda_elementwise_variadic_kernels(t);
  register_cuda_elementwise_cast_kernels(t);
}

}  // namespace kiln::cuda
