// What ONNX Runtime's QLinearConcat (com.microsoft; schema in qlinear_concat.cc) does to an input
// whose scale or zero point differs from the output's, shared by the CPU and CUDA kernels so both
// give ONNX Runtime's bytes: a 256-entry table from the input byte (read as T, int8 or uint8) to
// saturate(round_half_even((x_scale * float(x - x_zero_point)) / y_scale) + y_zero_point), all in
// float32 (MLAS's quantize). An input with the output's own scale and zero point is copied.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace kiln {

template <class T>
std::array<uint8_t, 256> qlinear_concat_table(float x_scale, int x_zero_point, float y_scale, int y_zero_point) {
  const float lo = float(std::numeric_limits<T>::min()), hi = float(std::numeric_limits<T>::max());
  std::array<uint8_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    const int x = int(static_cast<T>(uint8_t(i)));  // the byte read as T
    const float v = x_scale * float(x - x_zero_point);
    const float q = std::fmin(std::fmax(std::nearbyint(v / y_scale) + float(y_zero_point), lo), hi);
    table[size_t(i)] = uint8_t(static_cast<T>(q));
  }
  return table;
}

}  // namespace kiln
