// Row-major GEMM for the matmul and conv families: OpenBLAS for float and double (the
// speed-critical paths), plain loops for integers. C = alpha * op(A) * op(B) + beta * C.
// The layer's tactic may ask for the plain loops on float and double too (GemmEngine::kLoops,
// tactic "cpu.reference.<op>.loops"): for small products (a depthwise conv's per-group GEMM,
// m = 1 and k = 9) a BLAS call's set-up can cost more than the arithmetic; the tuner times both.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "core/dtype.h"

namespace kiln::cpu {

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc, GemmEngine engine = GemmEngine::kBlas) {
  if (m == 0 || n == 0) return;
  if (engine == GemmEngine::kBlas && std::is_same_v<T, float>) {
    if (k == 0) {
      for (int64_t i = 0; i < m; ++i) for (int64_t j = 0; j < n; ++j) c[i * ldc + j] *= beta;
      return;
    }
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
                  int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
  } else if (engine == GemmEngine::kBlas && std::is_same_v<T, double>) {
    if (k == 0) {
      for (int64_t i = 0; i < m; ++i) for (int64_t j = 0; j < n; ++j) c[i * ldc + j] *= beta;
      return;
    }
    if constexpr (std::is_same_v<T, double>)
      cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
                  int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
  } else {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
        c[i * ldc + j] = beta == T(0) ? alpha * acc : alpha * acc + beta * c[i * ldc + j];  // BLAS: beta 0 ignores C
      }
    }
  }
}

// Elements of a tensor as compute type C (float for float16/bfloat16), for kernels that
// convert once and then run the float/double GEMM.
template <class C, class T>
std::vector<C> to_compute(const T* p, int64_t n) {
  std::vector<C> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<C>(static_cast<compute_t<T>>(p[i]));
  return out;
}

}  // namespace kiln::cpu
