// Row-major GEMM for the matmul and conv families: OpenBLAS for float and double (the
// speed-critical paths), plain loops for integers. C = alpha * op(A) * op(B) + beta * C.
#pragma once
#include <cblas.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/dtype.h"

namespace kiln::cpu {

template <class T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (k == 0) {
      for (int64_t i = 0; i < m; ++i) for (int64_t j = 0; j < n; ++j) c[i * ldc + j] *= beta;
      return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
                int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
  } else if constexpr (std::is_same_v<T, double>) {
    if (k == 0) {
      for (int64_t i = 0; i < m; ++i) for (int64_t j = 0; j < n; ++j) c[i * ldc + j] *= beta;
      return;
    }
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n),
                int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
  } else {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
        c[i * ldc + j] = alpha * acc + beta * c[i * ldc + j];
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
