#include "onnx/tensor_decode.h"

#include <cstring>

namespace kiln::onnx_import {

Expected<std::shared_ptr<MappedFile>> ExternalData::file(const std::string& location) {
  if (location.empty()) return err("external data has an empty 'location'");
  if (location[0] == '/' || location.find("..") != std::string::npos)
    return err("external data location '", location, "' must be a path inside the model's folder");
  auto it = files_.find(location);
  if (it != files_.end()) return it->second;
  std::string path = base_dir_.empty() ? location : base_dir_ + "/" + location;
  auto f = MappedFile::open(path);
  if (!f) return err("external data file missing or unreadable: ", f.status().message());
  files_[location] = *f;
  return *f;
}

namespace {

template <class Src, class T, class Conv>
Tensor from_field(DataType dt, std::vector<int64_t> dims, const Src& field, Conv conv) {
  Tensor t = Tensor::zeros(dt, std::move(dims)).value();
  T* p = t.mutable_data<T>();
  for (int i = 0; i < field.size(); ++i) p[i] = conv(field.Get(i));
  return t;
}

Expected<Tensor> decode_typed_fields(const onnx::TensorProto& p, DataType dt, std::vector<int64_t> dims,
                                     int64_t n) {
  auto count_ok = [&](int size) -> Status {
    if (size != n)
      return err("tensor '", p.name(), "' holds ", size, " values but its shape ", dims_to_string(dims),
                 " needs ", n);
    return Status::ok();
  };
  auto same = [](auto v) { return v; };
  switch (dt) {
    case DataType::kFloat32:
      KILN_RETURN_IF_ERROR(count_ok(p.float_data_size()));
      return from_field<decltype(p.float_data()), float>(dt, dims, p.float_data(), same);
    case DataType::kFloat64:
      KILN_RETURN_IF_ERROR(count_ok(p.double_data_size()));
      return from_field<decltype(p.double_data()), double>(dt, dims, p.double_data(), same);
    case DataType::kInt64:
      KILN_RETURN_IF_ERROR(count_ok(p.int64_data_size()));
      return from_field<decltype(p.int64_data()), int64_t>(dt, dims, p.int64_data(), same);
    case DataType::kUInt32:
    case DataType::kUInt64:
      KILN_RETURN_IF_ERROR(count_ok(p.uint64_data_size()));
      if (dt == DataType::kUInt32)
        return from_field<decltype(p.uint64_data()), uint32_t>(dt, dims, p.uint64_data(),
                                                               [](uint64_t v) { return uint32_t(v); });
      return from_field<decltype(p.uint64_data()), uint64_t>(dt, dims, p.uint64_data(), same);
    default: break;
  }
  if (dtype_is_quantized(dt)) {
    // float8 types: one element's bits per int32_data entry. Packed types (int4, ...): one
    // packed byte per entry, ceil(n * bits / 8) of them, low bits first.
    const int64_t entries = dtype_is_packed(dt) ? static_cast<int64_t>(dtype_nbytes(dt, n)) : n;
    if (p.int32_data_size() != entries)
      return err("tensor '", p.name(), "' holds ", p.int32_data_size(), " int32_data entries but ",
                 dtype_name(dt), dims_to_string(dims), " needs ", entries);
    Tensor t = Tensor::zeros(dt, dims).value();
    auto* out = reinterpret_cast<uint8_t*>(t.mutable_raw());
    for (int i = 0; i < p.int32_data_size(); ++i) out[i] = static_cast<uint8_t>(p.int32_data(i));
    return t;
  }
  // Every other fixed-size type travels in int32_data, one element per entry; 16-bit floats
  // as their bit patterns.
  KILN_RETURN_IF_ERROR(count_ok(p.int32_data_size()));
  Tensor t = Tensor::zeros(dt, dims).value();
  Status s = visit_dtype(dt, AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* out = t.mutable_data<T>();
    for (int i = 0; i < p.int32_data_size(); ++i) {
      int32_t v = p.int32_data(i);
      if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) out[i].bits = uint16_t(v);
      else out[i] = static_cast<T>(v);
    }
  });
  if (!s) return err("tensor '", p.name(), "': ", s.message());
  return t;
}

Expected<Tensor> decode_external(const onnx::TensorProto& p, DataType dt, std::vector<int64_t> dims,
                                 size_t nbytes, ExternalData* external) {
  if (!external) return err("tensor '", p.name(), "' uses external data, but the model was not loaded from a file");
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    try {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = std::stoll(kv.value());
      else if (kv.key() == "length") length = std::stoll(kv.value());
    } catch (const std::exception&) {
      return err("tensor '", p.name(), "': malformed external data field '", kv.key(), "'");
    }
  }
  auto file = external->file(location);
  if (!file) return err("tensor '", p.name(), "': ", file.status().message());
  const auto& f = *file;
  if (length >= 0 && static_cast<size_t>(length) != nbytes)
    return err("tensor '", p.name(), "': external data length ", length, " does not match ",
               dtype_name(dt), dims_to_string(dims), " (", nbytes, " bytes)");
  if (offset < 0 || static_cast<uint64_t>(offset) > f->size() || nbytes > f->size() - offset)
    return err("tensor '", p.name(), "': external data [", offset, ", +", nbytes, ") lies outside '",
               f->path(), "' (", f->size(), " bytes)");
  // Alias the mapping: the tensor keeps the file mapped for as long as it lives.
  std::shared_ptr<const std::byte> bytes(f, f->data() + offset);
  const size_t align = dtype_size(dt) ? dtype_size(dt) : 1;  // packed types: byte-aligned
  if (reinterpret_cast<uintptr_t>(bytes.get()) % align != 0) {  // misaligned: copy
    Tensor t = Tensor::zeros(dt, dims).value();
    std::memcpy(t.mutable_raw(), bytes.get(), nbytes);
    return t;
  }
  return Tensor::view(dt, std::move(dims), std::move(bytes), nbytes);
}

}  // namespace

Expected<Tensor> decode_tensor(const onnx::TensorProto& p, ExternalData* external) {
  if (p.has_segment()) return err("tensor '", p.name(), "': segmented tensors are not supported");
  if (!dtype_code_known(p.data_type()))
    return err("tensor '", p.name(), "' has unknown data type code ", p.data_type());
  DataType dt = static_cast<DataType>(p.data_type());
  if (dt == DataType::kString || dt == DataType::kComplex64 || dt == DataType::kComplex128 ||
      dt == DataType::kUndefined)
    return err("tensor '", p.name(), "' has type ", dtype_name(dt), ", which kiln does not support");
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  auto numel = checked_numel(dims, "tensor '" + p.name() + "'");
  if (!numel) return numel.status();
  // Packed types (int4, int2, float4e2m1) store ceil(numel * bits / 8) bytes.
  size_t bits = dtype_bits(dt);
  if (static_cast<uint64_t>(*numel) > SIZE_MAX / 2 / bits)
    return err("tensor '", p.name(), "' shape ", dims_to_string(dims), " is too large");
  size_t nbytes = dtype_nbytes(dt, *numel);

  if (p.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
    return decode_external(p, dt, std::move(dims), nbytes, external);
  if (p.has_raw_data()) {
    const std::string& raw = p.raw_data();
    if (raw.size() != nbytes)
      return err("tensor '", p.name(), "' has ", raw.size(), " bytes of raw data but ", dtype_name(dt),
                 dims_to_string(dims), " needs ", nbytes);
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(dt, std::move(dims)));
    if (nbytes) std::memcpy(t.mutable_raw(), raw.data(), nbytes);
    return t;
  }
  return decode_typed_fields(p, dt, std::move(dims), *numel);
}

Expected<Tensor> load_tensor_file(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes)) return err("'", path, "' is not a valid serialized TensorProto");
  auto t = decode_tensor(proto, nullptr);
  if (!t) return err(path, ": ", t.status().message());
  return t;
}

}  // namespace kiln::onnx_import
