#include "ir/tensor.h"

#include "core/float8.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>

namespace kiln {

namespace {
// The machine's memory (RAM): a tensor larger than that is refused by its size, with an error
// that says so, before the allocator is asked (overcommit may grant it, and zeroing it then
// thrashes until the process is killed).
uint64_t physical_memory_bytes() {
  static const uint64_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : UINT64_MAX;
  }();
  return bytes;
}

std::string gib(uint64_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f GiB", double(bytes) / double(uint64_t(1) << 30));
  return s;
}

std::shared_ptr<std::byte> allocate_bytes(size_t n) {
  // 64-byte alignment suits SIMD loads and BLAS; at least one byte so data() is never null.
  size_t size = (n + 63) / 64 * 64;
  if (size == 0) size = 64;
  auto* p = static_cast<std::byte*>(::operator new(size, std::align_val_t(64)));
  std::memset(p, 0, size);
  return std::shared_ptr<std::byte>(p, [](std::byte* q) { ::operator delete(q, std::align_val_t(64)); });
}
}  // namespace

Expected<Tensor> Tensor::zeros(DataType dtype, std::vector<int64_t> dims) {
  if (dtype_bits(dtype) == 0) return err("cannot allocate a tensor of type ", dtype_name(dtype));
  KILN_ASSIGN_OR_RETURN(int64_t n, checked_numel(dims, std::string("tensor of type ") + dtype_name(dtype)));
  if (n > static_cast<int64_t>(SIZE_MAX / 2 / dtype_bits(dtype)))
    return err("tensor ", dims_to_string(dims), " is too large to allocate");
  if (dtype_nbytes(dtype, n) > physical_memory_bytes())
    return err("tensor ", dtype_name(dtype), dims_to_string(dims), " needs ", gib(dtype_nbytes(dtype, n)),
               ", more than this machine's memory (", gib(physical_memory_bytes()), ")");
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = n;
  try {
    t.data_ = allocate_bytes(dtype_nbytes(dtype, n));
  } catch (const std::bad_alloc&) {
    return err("out of memory allocating ", dtype_name(dtype), dims_to_string(t.dims_));
  }
  return t;
}

Expected<Tensor> Tensor::view(DataType dtype, std::vector<int64_t> dims,
                              std::shared_ptr<const std::byte> data, size_t nbytes) {
  KILN_ASSIGN_OR_RETURN(int64_t n, checked_numel(dims, "tensor view"));
  size_t bits = dtype_bits(dtype);
  if (bits == 0) return err("cannot hold a tensor of type ", dtype_name(dtype));
  if (static_cast<uint64_t>(n) > SIZE_MAX / 2 / bits || dtype_nbytes(dtype, n) != nbytes)
    return err("byte size ", nbytes, " does not match ", dtype_name(dtype), dims_to_string(dims));
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = n;
  t.data_ = std::move(data);
  return t;
}

Expected<Tensor> Tensor::reshaped(std::vector<int64_t> dims) const {
  KILN_ASSIGN_OR_RETURN(int64_t n, checked_numel(dims, "reshape"));
  if (n != numel_)
    return err("cannot view ", describe(), " as ", dims_to_string(dims), ": element counts differ");
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = zeros(dtype_, dims_).value();
  if (nbytes()) std::memcpy(t.mutable_raw(), raw(), nbytes());
  return t;
}

double Tensor::get_as_double(int64_t i) const {
  if (dtype_is_quantized(dtype_)) return load_quantized(raw(), dtype_, i);
  double v = 0;
  (void)visit_dtype(dtype_, AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<double>(static_cast<compute_t<T>>(data<T>()[i]));
  });
  return v;
}

int64_t Tensor::get_as_int64(int64_t i) const {
  if (dtype_is_quantized(dtype_)) {
    double d = load_quantized(raw(), dtype_, i);
    return std::isfinite(d) ? static_cast<int64_t>(d) : 0;  // float8 NaN/inf have no integer value
  }
  int64_t v = 0;
  (void)visit_dtype(dtype_, AllTypes{}, [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<int64_t>(static_cast<compute_t<T>>(data<T>()[i]));
  });
  return v;
}

Expected<std::vector<int64_t>> Tensor::to_int64_vector() const {
  if (!dtype_is_signed_int(dtype_) && !dtype_is_unsigned_int(dtype_))
    return err("expected an integer tensor, got ", describe());
  std::vector<int64_t> out(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) out[i] = get_as_int64(i);
  return out;
}

std::string Tensor::describe() const { return std::string(dtype_name(dtype_)) + dims_to_string(dims_); }

}  // namespace kiln
