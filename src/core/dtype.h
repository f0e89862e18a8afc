// Element types. The numeric values are ONNX's TensorProto.DataType codes, so the importer
// and the engine file can store them as they are.
#pragma once
#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/float16.h"
#include "core/status.h"

namespace kiln {

enum class DataType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
  // Quantized types (opset 19 and later). The float8 types are one byte per element; the
  // 4-bit types are packed two per byte and the 2-bit ones four per byte, low bits first,
  // as ONNX stores them. Kernels reach them through load_element/store_element, not
  // visit_dtype.
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  kUInt4 = 21,
  kInt4 = 22,
  kFloat4E2M1 = 23,
  kFloat8E8M0 = 24,
  kUInt2 = 25,
  kInt2 = 26,
};

// Bytes per element; 0 for kUndefined and kString (not stored as fixed-size elements) and
// for the packed sub-byte types (int4, uint4, float4e2m1, int2, uint2), so code that walks
// elements byte-wise never mistakes them for one byte each. Use dtype_bits/dtype_nbytes
// for storage sizes.
size_t dtype_size(DataType t);
// Bits per element as stored (4 for int4, 2 for int2, 8 * dtype_size otherwise).
size_t dtype_bits(DataType t);
// Bytes that n elements occupy, packed as ONNX packs them: ceil(n * bits / 8).
size_t dtype_nbytes(DataType t, int64_t n);
// Whether t packs several elements into one byte.
bool dtype_is_packed(DataType t);
// Whether t is one of the quantized types (float8*, float4e2m1, int4/uint4, int2/uint2)
// that visit_dtype does not dispatch.
bool dtype_is_quantized(DataType t);
// ONNX spelling: "float", "float16", "int64", ...
const char* dtype_name(DataType t);
// Parses dtype_name()'s spelling.
Expected<DataType> dtype_from_name(const std::string& name);
// Whether `code` is a TensorProto.DataType kiln knows (not whether it computes with it).
bool dtype_code_known(int32_t code);
bool dtype_is_float(DataType t);    // float16/bfloat16/float32/float64
bool dtype_is_signed_int(DataType t);
bool dtype_is_unsigned_int(DataType t);  // includes bool

// C++ storage type of each element type. bool is stored as one byte.
template <DataType T> struct StorageOf;
template <> struct StorageOf<DataType::kFloat32> { using type = float; };
template <> struct StorageOf<DataType::kFloat64> { using type = double; };
template <> struct StorageOf<DataType::kFloat16> { using type = Half; };
template <> struct StorageOf<DataType::kBFloat16> { using type = BFloat16; };
template <> struct StorageOf<DataType::kInt8> { using type = int8_t; };
template <> struct StorageOf<DataType::kInt16> { using type = int16_t; };
template <> struct StorageOf<DataType::kInt32> { using type = int32_t; };
template <> struct StorageOf<DataType::kInt64> { using type = int64_t; };
template <> struct StorageOf<DataType::kUInt8> { using type = uint8_t; };
template <> struct StorageOf<DataType::kUInt16> { using type = uint16_t; };
template <> struct StorageOf<DataType::kUInt32> { using type = uint32_t; };
template <> struct StorageOf<DataType::kUInt64> { using type = uint64_t; };
template <> struct StorageOf<DataType::kBool> { using type = bool; };

template <class T> constexpr DataType dtype_of();
template <> constexpr DataType dtype_of<float>() { return DataType::kFloat32; }
template <> constexpr DataType dtype_of<double>() { return DataType::kFloat64; }
template <> constexpr DataType dtype_of<Half>() { return DataType::kFloat16; }
template <> constexpr DataType dtype_of<BFloat16>() { return DataType::kBFloat16; }
template <> constexpr DataType dtype_of<int8_t>() { return DataType::kInt8; }
template <> constexpr DataType dtype_of<int16_t>() { return DataType::kInt16; }
template <> constexpr DataType dtype_of<int32_t>() { return DataType::kInt32; }
template <> constexpr DataType dtype_of<int64_t>() { return DataType::kInt64; }
template <> constexpr DataType dtype_of<uint8_t>() { return DataType::kUInt8; }
template <> constexpr DataType dtype_of<uint16_t>() { return DataType::kUInt16; }
template <> constexpr DataType dtype_of<uint32_t>() { return DataType::kUInt32; }
template <> constexpr DataType dtype_of<uint64_t>() { return DataType::kUInt64; }
template <> constexpr DataType dtype_of<bool>() { return DataType::kBool; }

// The type arithmetic happens in: float for the 16-bit floats, the type itself otherwise.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>, float, T>;

template <class T>
constexpr bool is_float_v = std::is_floating_point_v<T> || std::is_same_v<T, Half> ||
                            std::is_same_v<T, BFloat16>;

// Type sets for dispatch.
struct FloatTypes {};    // float16, bfloat16, float32, float64
struct NumericTypes {};  // FloatTypes + all integers (no bool)
struct AllTypes {};      // NumericTypes + bool

namespace detail {
template <class F>
bool visit_float(DataType t, F&& f) {
  switch (t) {
    case DataType::kFloat32: f(float{}); return true;
    case DataType::kFloat64: f(double{}); return true;
    case DataType::kFloat16: f(Half{}); return true;
    case DataType::kBFloat16: f(BFloat16{}); return true;
    default: return false;
  }
}
template <class F>
bool visit_int(DataType t, F&& f) {
  switch (t) {
    case DataType::kInt8: f(int8_t{}); return true;
    case DataType::kInt16: f(int16_t{}); return true;
    case DataType::kInt32: f(int32_t{}); return true;
    case DataType::kInt64: f(int64_t{}); return true;
    case DataType::kUInt8: f(uint8_t{}); return true;
    case DataType::kUInt16: f(uint16_t{}); return true;
    case DataType::kUInt32: f(uint32_t{}); return true;
    case DataType::kUInt64: f(uint64_t{}); return true;
    default: return false;
  }
}
}  // namespace detail

// Calls f(T{}) with the storage type of `t` if `t` is in the set; otherwise returns an error
// naming the type. Usage: visit_dtype(t, NumericTypes{}, [&](auto tag) { using T = decltype(tag); ... });
template <class Set, class F>
Status visit_dtype(DataType t, Set, F&& f) {
  bool done = detail::visit_float(t, f);
  if constexpr (!std::is_same_v<Set, FloatTypes>) {
    if (!done) done = detail::visit_int(t, f);
  }
  if constexpr (std::is_same_v<Set, AllTypes>) {
    if (!done && t == DataType::kBool) { f(bool{}); done = true; }
  }
  if (!done) return err("unsupported element type ", dtype_name(t));
  return Status::ok();
}

// v rounded to the float type t through float, as numpy's float16/bfloat16 (and ONNX's
// reference kernels) round each intermediate; other types leave v as it is.
inline double round_to_float_type(DataType t, double v) {
  switch (t) {
    case DataType::kFloat32: return static_cast<float>(v);
    case DataType::kFloat16: return static_cast<float>(Half(static_cast<float>(v)));
    case DataType::kBFloat16: return static_cast<float>(BFloat16(static_cast<float>(v)));
    default: return v;
  }
}

}  // namespace kiln
