// A dense, row-major tensor: element type, static dims and a shared byte buffer.
// Copies share the buffer (initializers are stored once and never copied per node); a
// Tensor is written only through mutable_data() by whoever allocated it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor; fails if the element count overflows or the type has no fixed size.
  static Expected<Tensor> zeros(DataType dtype, std::vector<int64_t> dims);
  // A tensor over bytes someone else owns (`owner` keeps them alive). nbytes must match.
  static Expected<Tensor> view(DataType dtype, std::vector<int64_t> dims,
                               std::shared_ptr<const std::byte> data, size_t nbytes);
  // Convenience for tests and constants: a tensor holding `values`.
  template <class T>
  static Tensor from_vector(std::vector<int64_t> dims, const std::vector<T>& values);
  template <class T>
  static Tensor scalar(T value) { return from_vector<T>({}, {value}); }

  bool defined() const { return dtype_ != DataType::kUndefined; }
  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  size_t rank() const { return dims_.size(); }
  int64_t dim(size_t i) const { return dims_[i]; }
  int64_t numel() const { return numel_; }
  // Storage bytes; the packed types (int4, ...) take ceil(numel * bits / 8).
  size_t nbytes() const { return dtype_nbytes(dtype_, numel_); }
  Shape shape() const { return Shape::from_static(dims_); }

  const std::byte* raw() const { return data_.get(); }
  std::byte* mutable_raw() { return const_cast<std::byte*>(data_.get()); }
  template <class T> const T* data() const { return reinterpret_cast<const T*>(data_.get()); }
  template <class T> T* mutable_data() { return reinterpret_cast<T*>(mutable_raw()); }

  // Same bytes, other dims (element count must match): Reshape/Flatten/Squeeze as views.
  Expected<Tensor> reshaped(std::vector<int64_t> dims) const;
  // A deep copy with its own buffer.
  Tensor clone() const;
  // Reads element i as double / int64 whatever the element type (for shape inputs, tests);
  // the quantized types (float8, int4, ...) decode to their values.
  double get_as_double(int64_t i) const;
  int64_t get_as_int64(int64_t i) const;
  // All elements as int64 (for shape/axes/indices inputs); fails for non-integer types.
  Expected<std::vector<int64_t>> to_int64_vector() const;
  std::string describe() const;  // "float[1,3,224,224]"

 private:
  DataType dtype_ = DataType::kUndefined;
  std::vector<int64_t> dims_;
  int64_t numel_ = 0;
  std::shared_ptr<const std::byte> data_;
};

template <class T>
Tensor Tensor::from_vector(std::vector<int64_t> dims, const std::vector<T>& values) {
  Tensor t = zeros(dtype_of<T>(), std::move(dims)).value();
  T* p = t.mutable_data<T>();
  for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.numel()); ++i) p[i] = values[i];
  return t;
}

}  // namespace kiln
