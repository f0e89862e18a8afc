// cuDNN convolution algorithms and math types as the words of tactic ids
// ("cuda.conv.cudnn.implicit_precomp_gemm.tensor_op"), and back: conv.cu (NCHW) and
// conv_nhwc.cu (NHWC) record their build-time choice this way.
#pragma once
#include <cudnn.h>

#include <string>

namespace kiln::cuda {

struct CudnnAlgoName {
  int algo;
  const char* name;
};
inline constexpr CudnnAlgoName kFwdAlgos[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, "implicit_gemm"},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, "implicit_precomp_gemm"},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, "gemm"},
    {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, "direct"},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, "fft"},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, "fft_tiling"},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, "winograd"},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, "winograd_nonfused"},
};
inline constexpr CudnnAlgoName kBwdDataAlgos[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, "algo0"},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, "algo1"},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, "fft"},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, "fft_tiling"},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, "winograd"},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, "winograd_nonfused"},
};
inline constexpr CudnnAlgoName kMathTypes[] = {
    {CUDNN_DEFAULT_MATH, "default"},
    {CUDNN_TENSOR_OP_MATH, "tensor_op"},
    {CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, "tensor_op_conv"},
    {CUDNN_FMA_MATH, "fma"},
};

// "<algo>.<math>" for the tactic id.
template <size_t N>
std::string cudnn_algo_name(const CudnnAlgoName (&algos)[N], int algo, cudnnMathType_t math) {
  std::string s = "algo" + std::to_string(algo), m = "math" + std::to_string(int(math));
  for (const auto& a : algos) if (a.algo == algo) s = a.name;
  for (const auto& a : kMathTypes) if (a.algo == int(math)) m = a.name;
  return s + "." + m;
}

// Parses "<algo>.<math>"; false if either word is unknown to this build.
template <size_t N>
bool parse_cudnn_algo(const CudnnAlgoName (&algos)[N], const std::string& s, int* algo, cudnnMathType_t* math) {
  const size_t dot = s.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string a = s.substr(0, dot), m = s.substr(dot + 1);
  bool got_a = false, got_m = false;
  for (const auto& x : algos) if (a == x.name) { *algo = x.algo; got_a = true; }
  for (const auto& x : kMathTypes) if (m == x.name) { *math = cudnnMathType_t(x.algo); got_m = true; }
  return got_a && got_m;
}

}  // namespace kiln::cuda
