#include "core/dtype.h"

namespace kiln {

namespace {
struct TypeRow { DataType type; const char* name; size_t size; };
constexpr TypeRow kTypes[] = {
    {DataType::kUndefined, "undefined", 0}, {DataType::kFloat32, "float", 4},
    {DataType::kUInt8, "uint8", 1},         {DataType::kInt8, "int8", 1},
    {DataType::kUInt16, "uint16", 2},       {DataType::kInt16, "int16", 2},
    {DataType::kInt32, "int32", 4},         {DataType::kInt64, "int64", 8},
    {DataType::kString, "string", 0},       {DataType::kBool, "bool", 1},
    {DataType::kFloat16, "float16", 2},     {DataType::kFloat64, "double", 8},
    {DataType::kUInt32, "uint32", 4},       {DataType::kUInt64, "uint64", 8},
    {DataType::kComplex64, "complex64", 8}, {DataType::kComplex128, "complex128", 16},
    {DataType::kBFloat16, "bfloat16", 2},
    {DataType::kFloat8E4M3FN, "float8e4m3fn", 1}, {DataType::kFloat8E4M3FNUZ, "float8e4m3fnuz", 1},
    {DataType::kFloat8E5M2, "float8e5m2", 1},   {DataType::kFloat8E5M2FNUZ, "float8e5m2fnuz", 1},
    {DataType::kUInt4, "uint4", 0},             {DataType::kInt4, "int4", 0},
    {DataType::kFloat4E2M1, "float4e2m1", 0},   {DataType::kFloat8E8M0, "float8e8m0", 1},
    {DataType::kUInt2, "uint2", 0},             {DataType::kInt2, "int2", 0},
};
const TypeRow* row(DataType t) {
  for (const auto& r : kTypes) if (r.type == t) return &r;
  return nullptr;
}
}  // namespace

size_t dtype_size(DataType t) { const TypeRow* r = row(t); return r ? r->size : 0; }
size_t dtype_bits(DataType t) {
  switch (t) {
    case DataType::kUInt4: case DataType::kInt4: case DataType::kFloat4E2M1: return 4;
    case DataType::kUInt2: case DataType::kInt2: return 2;
    default: return dtype_size(t) * 8;
  }
}
size_t dtype_nbytes(DataType t, int64_t n) {
  return (static_cast<size_t>(n) * dtype_bits(t) + 7) / 8;
}
bool dtype_is_packed(DataType t) { size_t b = dtype_bits(t); return b != 0 && b < 8; }
bool dtype_is_quantized(DataType t) {
  int32_t c = static_cast<int32_t>(t);
  return c >= static_cast<int32_t>(DataType::kFloat8E4M3FN) && c <= static_cast<int32_t>(DataType::kInt2);
}
const char* dtype_name(DataType t) { const TypeRow* r = row(t); return r ? r->name : "unknown"; }
bool dtype_code_known(int32_t code) { return row(static_cast<DataType>(code)) != nullptr; }

Expected<DataType> dtype_from_name(const std::string& name) {
  for (const auto& r : kTypes) if (name == r.name) return r.type;
  if (name == "float32") return DataType::kFloat32;
  if (name == "float64") return DataType::kFloat64;
  return err("unknown element type '", name, "'");
}

bool dtype_is_float(DataType t) {
  return t == DataType::kFloat32 || t == DataType::kFloat64 || t == DataType::kFloat16 ||
         t == DataType::kBFloat16;
}
bool dtype_is_signed_int(DataType t) {
  return t == DataType::kInt8 || t == DataType::kInt16 || t == DataType::kInt32 || t == DataType::kInt64;
}
bool dtype_is_unsigned_int(DataType t) {
  return t == DataType::kUInt8 || t == DataType::kUInt16 || t == DataType::kUInt32 ||
         t == DataType::kUInt64 || t == DataType::kBool;
}

}  // namespace kiln
