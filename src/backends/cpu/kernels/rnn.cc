// CPU kernels of the rnn family: RNN, GRU and LSTM, one shared time loop over a per-op cell.
// Everything is computed in double on canonical (layout 0) index order; layout 1 only changes
// where X, the initial states and the outputs are read and written.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"

namespace kiln::cpu {

namespace {

struct Act {
  std::string name;
  double alpha = 0, beta = 0;
  double operator()(double x) const {
    if (name == "sigmoid") return 1 / (1 + std::exp(-x));
    if (name == "tanh") return std::tanh(x);
    if (name == "relu") return std::max(x, 0.0);
    if (name == "affine") return alpha * x + beta;
    if (name == "leakyrelu") return x >= 0 ? x : alpha * x;
    if (name == "thresholdedrelu") return x > alpha ? x : 0;
    if (name == "scaledtanh") return alpha * std::tanh(beta * x);
    if (name == "hardsigmoid") return std::clamp(alpha * x + beta, 0.0, 1.0);
    if (name == "elu") return x >= 0 ? x : alpha * (std::exp(x) - 1);
    if (name == "softsign") return x / (1 + std::fabs(x));
    return std::log1p(std::exp(x));  // softplus
  }
};

// Default alpha/beta of each activation, and whether it reads them from the attribute lists.
bool known_act(const std::string& n, double* alpha, double* beta, int* uses) {
  *alpha = 0; *beta = 0; *uses = 0;
  if (n == "sigmoid" || n == "tanh" || n == "relu" || n == "softsign" || n == "softplus") return true;
  if (n == "leakyrelu") { *alpha = 0.01; *uses = 1; return true; }
  if (n == "thresholdedrelu" || n == "elu") { *alpha = 1.0; *uses = 1; return true; }
  if (n == "affine" || n == "scaledtanh") { *alpha = 1.0; *beta = n == "affine" ? 0.0 : 1.0; *uses = 2; return true; }
  if (n == "hardsigmoid") { *alpha = 0.2; *beta = 0.5; *uses = 2; return true; }
  return false;
}

struct Spec {
  std::string op;
  int64_t S = 0, B = 0, I = 0, H = 0, dirs = 1, layout = 0, G = 1;
  bool has_clip = false, lbr = false, input_forget = false;
  double clip = 0;
  std::vector<Act> acts;  // acts_per_dir * dirs
  size_t acts_per_dir = 1;
};

Status read_acts(const KernelContext& ctx, Spec& s) {
  const Node& n = ctx.node();
  s.acts_per_dir = s.op == "LSTM" ? 3 : s.op == "GRU" ? 2 : 1;
  std::vector<std::string> names = n.attr_strings("activations");
  if (names.empty()) {
    std::vector<std::string> d = s.op == "LSTM" ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                 : s.op == "GRU" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                 : std::vector<std::string>{"Tanh"};
    for (int64_t k = 0; k < s.dirs; ++k) names.insert(names.end(), d.begin(), d.end());
  }
  if (names.size() == s.acts_per_dir && s.dirs == 2) names.insert(names.end(), names.begin(), names.end());
  if (names.size() != s.acts_per_dir * size_t(s.dirs))
    return ctx.fail("expected ", s.acts_per_dir * size_t(s.dirs), " activations, got ", names.size());
  std::vector<float> alphas = n.attr_floats("activation_alpha"), betas = n.attr_floats("activation_beta");
  size_t ia = 0, ib = 0;
  for (std::string name : names) {
    for (char& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    Act a{name};
    int uses = 0;
    if (!known_act(name, &a.alpha, &a.beta, &uses)) return ctx.fail("unsupported activation '", name, "'");
    if (uses >= 1 && ia < alphas.size()) a.alpha = alphas[ia++];
    if (uses >= 2 && ib < betas.size()) a.beta = betas[ib++];
    s.acts.push_back(a);
  }
  return Status::ok();
}

std::vector<double> doubles(const KernelContext& ctx, size_t i, size_t n) {
  std::vector<double> v(n, 0.0);
  if (!ctx.has_input(i)) return v;
  const Tensor& t = ctx.input(i);
  for (int64_t k = 0; k < t.numel() && size_t(k) < n; ++k) v[size_t(k)] = t.get_as_double(k);
  return v;
}

// Indexes [d][b][h] state tensors in either layout.
int64_t state_at(const Spec& s, int64_t d, int64_t b, int64_t h) {
  return s.layout == 0 ? (d * s.B + b) * s.H + h : (b * s.dirs + d) * s.H + h;
}
int64_t y_at(const Spec& s, int64_t t, int64_t d, int64_t b, int64_t h) {
  return s.layout == 0 ? ((t * s.dirs + d) * s.B + b) * s.H + h : ((b * s.S + t) * s.dirs + d) * s.H + h;
}

struct Weights {
  std::vector<double> x, w, r, bias, p, h0, c0;
};

// pre[g*H + j] = W x + R h + Wb + Rb for every gate row; GRU's h gate keeps R h separately.
void gate_inputs(const Spec& s, const Weights& wt, int64_t d, const double* x, const std::vector<double>& h,
                 std::vector<double>& xw, std::vector<double>& hr) {
  const int64_t rows = s.G * s.H;
  for (int64_t j = 0; j < rows; ++j) {
    const double* wr = &wt.w[size_t((d * rows + j) * s.I)];
    const double* rr = &wt.r[size_t((d * rows + j) * s.H)];
    double a = wt.bias[size_t(d * 2 * rows + j)], b = wt.bias[size_t(d * 2 * rows + rows + j)];
    for (int64_t k = 0; k < s.I; ++k) a += wr[k] * x[k];
    for (int64_t k = 0; k < s.H; ++k) b += rr[k] * h[size_t(k)];
    xw[size_t(j)] = a;
    hr[size_t(j)] = b;
  }
}

double clipped(const Spec& s, double v) { return s.has_clip ? std::clamp(v, -s.clip, s.clip) : v; }

// One time step for one batch entry; updates h (and c for LSTM).
void cell(const Spec& s, const Weights& wt, int64_t d, const double* x, std::vector<double>& h,
          std::vector<double>& c) {
  const int64_t H = s.H;
  std::vector<double> xw(size_t(s.G * H)), hr(size_t(s.G * H));
  gate_inputs(s, wt, d, x, h, xw, hr);
  const Act* f = &s.acts[size_t(d) * s.acts_per_dir];
  std::vector<double> nh(static_cast<size_t>(H));
  if (s.op == "RNN") {
    for (int64_t j = 0; j < H; ++j) nh[size_t(j)] = f[0](clipped(s, xw[size_t(j)] + hr[size_t(j)]));
  } else if (s.op == "GRU") {
    const int64_t rows = 3 * H;
    std::vector<double> z(static_cast<size_t>(H)), r(static_cast<size_t>(H));
    for (int64_t j = 0; j < H; ++j) {
      z[size_t(j)] = f[0](clipped(s, xw[size_t(j)] + hr[size_t(j)]));
      r[size_t(j)] = f[0](clipped(s, xw[size_t(H + j)] + hr[size_t(H + j)]));
    }
    for (int64_t j = 0; j < H; ++j) {
      double hh;
      if (s.lbr) {
        hh = xw[size_t(2 * H + j)] + r[size_t(j)] * hr[size_t(2 * H + j)];
      } else {  // (r .* h) R_h^T + Rb_h: the reset applies before the recurrent product
        double acc = wt.bias[size_t(d * 2 * rows + rows + 2 * H + j)];
        const double* rr = &wt.r[size_t((d * rows + 2 * H + j) * H)];
        for (int64_t k = 0; k < H; ++k) acc += rr[k] * r[size_t(k)] * h[size_t(k)];
        hh = xw[size_t(2 * H + j)] + acc;
      }
      nh[size_t(j)] = (1 - z[size_t(j)]) * f[1](clipped(s, hh)) + z[size_t(j)] * h[size_t(j)];
    }
  } else {  // LSTM, gates i, o, f, c; peepholes i, o, f
    const double* p = &wt.p[size_t(d * 3 * H)];
    for (int64_t j = 0; j < H; ++j) {
      auto pre = [&](int64_t g) { return xw[size_t(g * H + j)] + hr[size_t(g * H + j)]; };
      double cp = c[size_t(j)];
      double i = f[0](clipped(s, pre(0) + p[j] * cp));
      double fg = s.input_forget ? 1 - i : f[0](clipped(s, pre(2) + p[2 * H + j] * cp));
      double cc = f[1](clipped(s, pre(3)));
      double cn = fg * cp + i * cc;
      double o = f[0](clipped(s, pre(1) + p[H + j] * cn));
      c[size_t(j)] = cn;
      nh[size_t(j)] = o * f[2](cn);
    }
  }
  h = nh;
}

Status read_spec(KernelContext& ctx, Spec& s) {
  const Node& n = ctx.node();
  const Tensor& x = ctx.input(0);
  s.op = n.op_type;
  s.G = s.op == "LSTM" ? 4 : s.op == "GRU" ? 3 : 1;
  s.layout = n.attr_int("layout", 0);
  s.S = x.dim(s.layout == 0 ? 0 : 1);
  s.B = x.dim(s.layout == 0 ? 1 : 0);
  s.I = x.dim(2);
  s.dirs = n.attr_string("direction", "forward") == "bidirectional" ? 2 : 1;
  s.H = n.has_attr("hidden_size") ? n.attr_int("hidden_size", 0) : ctx.input(2).dim(2);
  s.has_clip = n.has_attr("clip");
  s.clip = n.attr_float("clip", 0.f);
  s.lbr = n.attr_int("linear_before_reset", 0) != 0;
  s.input_forget = n.attr_int("input_forget", 0) != 0;
  const Tensor& w = ctx.input(1);
  const Tensor& r = ctx.input(2);
  if (w.dims() != std::vector<int64_t>{s.dirs, s.G * s.H, s.I})
    return ctx.fail("W is ", w.describe(), ", expected [", s.dirs, ",", s.G * s.H, ",", s.I, "]");
  if (r.dims() != std::vector<int64_t>{s.dirs, s.G * s.H, s.H})
    return ctx.fail("R is ", r.describe(), ", expected [", s.dirs, ",", s.G * s.H, ",", s.H, "]");
  auto check_numel = [&](size_t i, int64_t want, const char* what) -> Status {
    if (ctx.has_input(i) && ctx.input(i).numel() != want)
      return ctx.fail(what, " is ", ctx.input(i).describe(), ", expected ", want, " elements");
    return Status::ok();
  };
  KILN_RETURN_IF_ERROR(check_numel(3, s.dirs * 2 * s.G * s.H, "B"));
  KILN_RETURN_IF_ERROR(check_numel(4, s.B, "sequence_lens"));
  KILN_RETURN_IF_ERROR(check_numel(5, s.dirs * s.B * s.H, "initial_h"));
  KILN_RETURN_IF_ERROR(check_numel(6, s.dirs * s.B * s.H, "initial_c"));
  KILN_RETURN_IF_ERROR(check_numel(7, s.dirs * 3 * s.H, "P"));
  return read_acts(ctx, s);
}

Status store(Tensor& y, const std::vector<double>& v) {
  return visit_dtype(y.dtype(), FloatTypes{}, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.mutable_data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) p[i] = static_cast<T>(static_cast<compute_t<T>>(v[size_t(i)]));
  });
}

Status recurrent(KernelContext& ctx) {
  Spec s;
  KILN_RETURN_IF_ERROR(read_spec(ctx, s));
  Weights wt;
  wt.x = doubles(ctx, 0, size_t(s.S * s.B * s.I));
  wt.w = doubles(ctx, 1, size_t(s.dirs * s.G * s.H * s.I));
  wt.r = doubles(ctx, 2, size_t(s.dirs * s.G * s.H * s.H));
  wt.bias = doubles(ctx, 3, size_t(s.dirs * 2 * s.G * s.H));
  wt.h0 = doubles(ctx, 5, size_t(s.dirs * s.B * s.H));
  wt.c0 = doubles(ctx, 6, size_t(s.dirs * s.B * s.H));
  wt.p = doubles(ctx, 7, size_t(s.dirs * 3 * s.H));
  std::vector<double> y(size_t(s.S * s.dirs * s.B * s.H), 0.0), yh(size_t(s.dirs * s.B * s.H)), yc = yh;
  const bool reverse_only = ctx.node().attr_string("direction", "forward") == "reverse";
  for (int64_t b = 0; b < s.B; ++b) {
    int64_t len = ctx.has_input(4) ? ctx.input(4).get_as_int64(b) : s.S;
    if (len < 0 || len > s.S) return ctx.fail("sequence_lens[", b, "] = ", len, " out of range [0, ", s.S, "]");
    for (int64_t d = 0; d < s.dirs; ++d) {
      const bool reverse = reverse_only || d == 1;
      std::vector<double> h(size_t(s.H)), c(size_t(s.H));
      for (int64_t j = 0; j < s.H; ++j) {
        h[size_t(j)] = wt.h0[size_t(state_at(s, d, b, j))];
        c[size_t(j)] = wt.c0[size_t(state_at(s, d, b, j))];
      }
      for (int64_t step = 0; step < len; ++step) {
        const int64_t t = reverse ? len - 1 - step : step;
        const int64_t xoff = s.layout == 0 ? (t * s.B + b) * s.I : (b * s.S + t) * s.I;
        cell(s, wt, d, &wt.x[size_t(xoff)], h, c);
        for (int64_t j = 0; j < s.H; ++j) y[size_t(y_at(s, t, d, b, j))] = h[size_t(j)];
      }
      for (int64_t j = 0; j < s.H; ++j) {
        yh[size_t(state_at(s, d, b, j))] = h[size_t(j)];
        yc[size_t(state_at(s, d, b, j))] = c[size_t(j)];
      }
    }
  }
  if (ctx.has_output(0)) KILN_RETURN_IF_ERROR(store(ctx.output(0), y));
  if (ctx.has_output(1)) KILN_RETURN_IF_ERROR(store(ctx.output(1), yh));
  if (ctx.has_output(2)) KILN_RETURN_IF_ERROR(store(ctx.output(2), yc));
  return Status::ok();
}

}  // namespace

void register_rnn_kernels(KernelTable& t) {
  t.add("", "RNN", recurrent);
  t.add("", "GRU", recurrent);
  t.add("", "LSTM", recurrent);
}

}  // namespace kiln::cpu
