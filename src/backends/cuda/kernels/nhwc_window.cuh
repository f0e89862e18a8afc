// What the channels-last window kernels share (conv_nhwc_depthwise.cu's depthwise convolution and
// pool.cu's NHWC MaxPool): the 2-D window geometry, 16-byte channel packs, and which output
// pixel and channel group a flat thread index stands for.
#pragma once
#include <cstdint>

namespace kiln::cuda {

// X [n, h, w, c] -> Y [n, oh, ow, c] through a kh x kw window (strides, begin pads, dilations).
struct NhwcWindow {
  int n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};

// V adjacent channels, loaded and stored as one vector (V = 8 halves / 4 floats = 16 bytes).
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Thread index i covers channels [c0, c0 + V) of output pixel (n, oy, ox); i runs over n*oh*ow*(c/V).
struct NhwcPixel {
  int64_t n;
  int oy, ox, c0;
};
template <int V>
__device__ __forceinline__ NhwcPixel nhwc_pixel(int64_t i, const NhwcWindow& g) {
  const int cv = g.c / V;
  int64_t r = i / cv;
  NhwcPixel p;
  p.c0 = int(i - r * cv) * V;
  p.ox = int(r % g.ow);
  r /= g.ow;
  p.oy = int(r % g.oh);
  p.n = r / g.oh;
  return p;
}

}  // namespace kiln::cuda
