// Loops shared by the elementwise and activation kernels: a broadcasting binary loop, a unary
// map, and type dispatch over the narrower sets those ops accept (integers, unsigned, bool).
// Arithmetic happens in compute_t<T> (float for float16/bfloat16).
#pragma once
#include <type_traits>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

struct IntegerTypes {};   // all signed and unsigned integers (no bool)
struct UnsignedTypes {};  // uint8..uint64
struct BoolType {};       // bool only

template <class T>
constexpr bool is_integer_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// visit_dtype extended with the sets above; f(T{}) is only instantiated for types in the set.
template <class Set, class F>
Status visit_set(DataType t, Set set, F&& f) {
  if constexpr (std::is_same_v<Set, IntegerTypes> || std::is_same_v<Set, UnsignedTypes>) {
    constexpr bool unsigned_only = std::is_same_v<Set, UnsignedTypes>;
    bool ok = unsigned_only ? dtype_is_unsigned_int(t) && t != DataType::kBool
                            : dtype_is_signed_int(t) || (dtype_is_unsigned_int(t) && t != DataType::kBool);
    if (!ok) return err("unsupported element type ", dtype_name(t));
    return visit_dtype(t, NumericTypes{}, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (is_integer_v<T> && (!unsigned_only || std::is_unsigned_v<T>)) f(tag);
    });
  } else if constexpr (std::is_same_v<Set, BoolType>) {
    if (t != DataType::kBool) return err("unsupported element type ", dtype_name(t));
    f(bool{});
    return Status::ok();
  } else {
    return visit_dtype(t, set, std::forward<F>(f));
  }
}

// y[i] = op(a[ia], b[ib]) over the broadcast of a and b; Out is y's storage type.
template <class In, class Out, class Op>
void broadcast_binary(const Tensor& a, const Tensor& b, Tensor& y, Op op) {
  using C = compute_t<In>;
  const In* pa = a.data<In>();
  const In* pb = b.data<In>();
  Out* py = y.mutable_data<Out>();
  for_each_broadcast<2>(y.dims(), {a.dims(), b.dims()}, [&](int64_t i, const std::array<int64_t, 2>& o) {
    py[i] = static_cast<Out>(op(static_cast<C>(pa[o[0]]), static_cast<C>(pb[o[1]])));
  });
}

// Input 1 as the binary op broadcasts it. Before opset 7, `broadcast=1` with `axis` aligns B's
// dims with A's starting at `axis`; padding B with trailing 1s makes that numpy broadcasting.
inline Tensor legacy_aligned_rhs(const KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (ctx.opset() >= 7 || !ctx.node().has_attr("axis")) return b;
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(a.rank());
  int64_t pad = static_cast<int64_t>(a.rank()) - axis - static_cast<int64_t>(b.rank());
  if (axis < 0 || pad <= 0) return b;
  std::vector<int64_t> dims = b.dims();
  dims.resize(dims.size() + static_cast<size_t>(pad), 1);
  auto r = b.reshaped(dims);
  return r ? *r : b;
}

// Binary op whose output has the inputs' type.
template <class Set, class Op>
Status binary_kernel(KernelContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor b = legacy_aligned_rhs(ctx);
  Status s = visit_set(a.dtype(), Set{}, [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, T>(a, b, ctx.output(0), op);
  });
  return s.with_context(ctx.node().label() + ": ");
}

// Binary predicate: bool output.
template <class Set, class Op>
Status compare_kernel(KernelContext& ctx, Op op) {
  const Tensor& a = ctx.input(0);
  const Tensor b = legacy_aligned_rhs(ctx);
  Status s = visit_set(a.dtype(), Set{}, [&](auto tag) {
    using T = decltype(tag);
    broadcast_binary<T, bool>(a, b, ctx.output(0), op);
  });
  return s.with_context(ctx.node().label() + ": ");
}

// y[i] = op(x[i]); Out defaults to the input type.
template <class Set, class Out = void, class Op>
Status unary_kernel(KernelContext& ctx, Op op) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  Status s = visit_set(x.dtype(), Set{}, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    using O = std::conditional_t<std::is_void_v<Out>, T, Out>;
    const T* px = x.data<T>();
    O* py = y.mutable_data<O>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = static_cast<O>(op(static_cast<C>(px[i])));
  });
  return s.with_context(ctx.node().label() + ": ");
}

}  // namespace kiln::cpu
