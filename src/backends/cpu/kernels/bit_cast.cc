// CPU kernel of BitCast (elementwise family): the output holds the input's bytes unchanged
// (both little endian here), read as the type named by 'to'.
#include <cstring>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

Status bit_cast(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  if (x.nbytes() != y.nbytes()) return ctx.fail("input has ", x.nbytes(), " bytes, output ", y.nbytes());
  if (y.dtype() == DataType::kBool) {
    // A C++ bool must hold 0 or 1; any other byte would be undefined to read back.
    const std::byte* px = x.raw();
    bool* py = y.mutable_data<bool>();
    for (int64_t i = 0; i < y.numel(); ++i) py[i] = px[i] != std::byte{0};
    return Status::ok();
  }
  if (x.nbytes() > 0) std::memcpy(y.mutable_raw(), x.raw(), x.nbytes());
  return Status::ok();
}

}  // namespace

void register_bit_cast_kernels(KernelTable& t) { t.add("", "BitCast", bit_cast); }

}  // namespace kiln::cpu
