// CPU kernels of the signal family: DFT and STFT (direct O(n^2) transforms in double, which is
// plenty for a reference backend), the cosine-sum windows and MelWeightMatrix.
#include <cmath>
#include <numbers>
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

// One 1-D DFT of length n over `in` (len_in complex samples, zero-padded or truncated to n);
// writes the first `m` bins to `out` (interleaved re, im).
void dft_1d(const std::vector<double>& in, int64_t len_in, int64_t n, int64_t m, bool inverse, double* out) {
  const double sign = inverse ? 1.0 : -1.0;
  const int64_t used = std::min(len_in, n);
  for (int64_t k = 0; k < m; ++k) {
    double re = 0, im = 0;
    for (int64_t j = 0; j < used; ++j) {
      // (j * k) mod n keeps the angle small, so the twiddles stay accurate for long signals.
      double ang = sign * 2 * std::numbers::pi * double((j * k) % n) / double(n);
      double c = std::cos(ang), s = std::sin(ang);
      re += in[size_t(2 * j)] * c - in[size_t(2 * j + 1)] * s;
      im += in[size_t(2 * j)] * s + in[size_t(2 * j + 1)] * c;
    }
    if (inverse) { re /= double(n); im /= double(n); }
    out[2 * k] = re;
    out[2 * k + 1] = im;
  }
}

Status store(Tensor& y, const std::vector<double>& v) {
  return visit_dtype(y.dtype(), NumericTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) p[i] = static_cast<T>(static_cast<compute_t<T>>(v[size_t(i)]));
  });
}

int64_t normalized_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

// A one-sided spectrum (the first n/2 + 1 bins) extended to all n bins by Hermitian symmetry,
// as numpy's irfft reads it: the imaginary parts of the DC and (even n) Nyquist bins are ignored.
std::vector<double> hermitian_full(const std::vector<double>& half, int64_t len_in, int64_t n) {
  std::vector<double> full(size_t(2 * n), 0.0);
  const int64_t used = std::min(len_in, n / 2 + 1);
  for (int64_t k = 0; k < used; ++k) {
    full[size_t(2 * k)] = half[size_t(2 * k)];
    full[size_t(2 * k + 1)] = half[size_t(2 * k + 1)];
    if (k > 0 && n - k > k) {
      full[size_t(2 * (n - k))] = half[size_t(2 * k)];
      full[size_t(2 * (n - k) + 1)] = -half[size_t(2 * k + 1)];
    }
  }
  full[1] = 0;
  if (n % 2 == 0 && n / 2 < used) full[size_t(n + 1)] = 0;
  return full;
}

// Axis and length as the schema resolved them (see infer_dft in src/ir/ops/signal.cc).
int64_t dft_axis(const KernelContext& ctx, int64_t rank) {
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (ctx.opset() >= 20) axis = ctx.has_input(2) ? ctx.input(2).get_as_int64(0) : -2;
  return normalized_axis(axis, rank);
}

Status dft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t rank = int64_t(x.rank());
  const int64_t axis = dft_axis(ctx, rank);
  const bool inverse = ctx.node().attr_int("inverse", 0) != 0;
  const bool irfft = inverse && ctx.node().attr_int("onesided", 0) != 0;
  const int64_t comps = x.dim(size_t(rank - 1)), comps_out = y.dim(size_t(rank - 1));
  const int64_t len_in = x.dim(size_t(axis));
  const int64_t n = ctx.has_input(1) ? ctx.input(1).get_as_int64(0) : irfft ? 2 * (len_in - 1) : len_in;
  const int64_t m = y.dim(size_t(axis));
  if (n <= 0) return ctx.fail("the transform length must be positive, got ", n);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(size_t(d));
  for (int64_t d = axis + 1; d < rank - 1; ++d) inner *= x.dim(size_t(d));
  std::vector<double> out(size_t(y.numel())), line(size_t(2 * len_in)), res(size_t(2 * m));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t j = 0; j < len_in; ++j) {
        int64_t base = ((o * len_in + j) * inner + i) * comps;
        line[size_t(2 * j)] = x.get_as_double(base);
        line[size_t(2 * j + 1)] = comps == 2 ? x.get_as_double(base + 1) : 0.0;
      }
      if (irfft) dft_1d(hermitian_full(line, len_in, n), n, n, m, true, res.data());
      else dft_1d(line, len_in, n, m, inverse, res.data());
      for (int64_t k = 0; k < m; ++k) {
        int64_t base = ((o * m + k) * inner + i) * comps_out;
        out[size_t(base)] = res[size_t(2 * k)];
        if (comps_out == 2) out[size_t(base + 1)] = res[size_t(2 * k + 1)];
      }
    }
  return store(y, out);
}

Status stft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const int64_t B = x.dim(0), L = x.dim(1), comps = x.dim(2);
  const int64_t step = ctx.input(1).get_as_int64(0);
  const int64_t frames = y.dim(1), bins = y.dim(2);
  const int64_t flen = ctx.has_input(3) ? ctx.input(3).get_as_int64(0) : ctx.input(2).dim(0);
  if (ctx.has_input(2) && ctx.input(2).numel() != flen)
    return ctx.fail("window has ", ctx.input(2).numel(), " values for frame_length ", flen);
  if (comps != 1 && comps != 2) return ctx.fail("signal's last dim must be 1 or 2, got ", x.describe());
  std::vector<double> out(size_t(y.numel())), frame(size_t(2 * flen));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t j = 0; j < flen; ++j) {
        const int64_t t = f * step + j;
        const double w = ctx.has_input(2) ? ctx.input(2).get_as_double(j) : 1.0;
        const int64_t base = (b * L + t) * comps;
        frame[size_t(2 * j)] = t < L ? w * x.get_as_double(base) : 0.0;
        frame[size_t(2 * j + 1)] = t < L && comps == 2 ? w * x.get_as_double(base + 1) : 0.0;
      }
      dft_1d(frame, flen, flen, bins, false, &out[size_t((b * frames + f) * bins * 2)]);
    }
  return store(y, out);
}

// Generalized cosine window a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N).
Status cosine_window(KernelContext& ctx, double a0, double a1, double a2) {
  Tensor& y = ctx.output(0);
  const int64_t size = y.dim(0);
  const bool periodic = ctx.node().attr_int("periodic", 1) != 0;
  const double N = double(periodic ? size : size - 1);
  std::vector<double> v(size_t(size), 1.0);
  for (int64_t i = 0; i < size && N > 0; ++i) {
    double t = 2 * std::numbers::pi * double(i) / N;
    v[size_t(i)] = a0 - a1 * std::cos(t) + a2 * std::cos(2 * t);
  }
  return store(y, v);
}

Status hann(KernelContext& c) { return cosine_window(c, 0.5, 0.5, 0.0); }
Status hamming(KernelContext& c) { return cosine_window(c, 25.0 / 46.0, 21.0 / 46.0, 0.0); }
Status blackman(KernelContext& c) { return cosine_window(c, 0.42, 0.5, 0.08); }

// Triangular filters on the mel scale, with bin edges rounded down to DFT bins as the ONNX
// reference does.
Status mel_weight_matrix(KernelContext& ctx) {
  Tensor& y = ctx.output(0);
  const int64_t mel = ctx.input(0).get_as_int64(0), dft_len = ctx.input(1).get_as_int64(0);
  const double rate = ctx.input(2).get_as_double(0);
  const double lo = ctx.input(3).get_as_double(0), hi = ctx.input(4).get_as_double(0);
  if (!(rate > 0) || !std::isfinite(lo) || !std::isfinite(hi) || lo < 0 || hi < lo || hi > rate)
    return ctx.fail("need 0 <= lower_edge_hertz <= upper_edge_hertz <= sample_rate, sample_rate > 0");
  const int64_t spec_bins = dft_len / 2 + 1;
  auto to_mel = [](double hz) { return 2595 * std::log10(1 + hz / 700); };
  const double lo_mel = to_mel(lo), step = (to_mel(hi) - lo_mel) / double(mel + 2);
  std::vector<int64_t> edge(size_t(mel + 2));
  for (int64_t i = 0; i < mel + 2; ++i) {
    double hz = 700 * (std::pow(10.0, (double(i) * step + lo_mel) / 2595) - 1);
    edge[size_t(i)] = int64_t(std::floor(double(dft_len + 1) * hz / rate));
  }
  std::vector<double> out(size_t(spec_bins * mel), 0.0);
  auto put = [&](int64_t j, int64_t i, double v) {
    if (j >= 0 && j < spec_bins) out[size_t(j * mel + i)] = v;
  };
  for (int64_t i = 0; i < mel; ++i) {
    const int64_t l = edge[size_t(i)], c = edge[size_t(i + 1)], h = edge[size_t(i + 2)];
    if (c == l) put(c, i, 1.0);
    else for (int64_t j = l; j <= c; ++j) put(j, i, double(j - l) / double(c - l));
    for (int64_t j = c; j < h; ++j) put(j, i, double(h - j) / double(h - c));
  }
  return store(y, out);
}

}  // namespace

void register_signal_kernels(KernelTable& t) {
  t.add("", "DFT", dft);
  t.add("", "STFT", stft);
  t.add("", "HannWindow", hann);
  t.add("", "HammingWindow", hamming);
  t.add("", "BlackmanWindow", blackman);
  t.add("", "MelWeightMatrix", mel_weight_matrix);
}

}  // namespace kiln::cpu
