// softmax_kernel.cpp — see softmax_kernel.h. Reductions run in kLanes independent accumulators so that the
// compiler vectorises them without reassociating float sums (-ffast-math is not used); the lanes are combined
// at the end of the row. Not here: threads, LibTorch.
#include "ddpm/nn/softmax_kernel.h"

#include "ddpm/util/simd.h"

#include <cmath>
#include <limits>

namespace ddpm::kernels {
namespace {

constexpr int64_t kLanes = 16;

DDPM_INLINE float row_max(const float* x, int64_t n) {
  float acc[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] = std::max(acc[l], x[j + l]);
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t l = 0; l < kLanes; ++l) m = std::max(m, acc[l]);
  for (; j < n; ++j) m = std::max(m, x[j]);
  return m;
}

// x[j] ← exp(scale · x[j] − shift); returns Σ_j of the new x.
DDPM_INLINE float exp_shift_sum(float* x, int64_t n, float scale, float shift) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const float e = exp_approx(scale * x[j + l] - shift);
      x[j + l] = e;
      acc[l] += e;
    }
  float s = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  for (; j < n; ++j) {
    x[j] = exp_approx(scale * x[j] - shift);
    s += x[j];
  }
  return s;
}

DDPM_INLINE float dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[j + l] * b[j + l];
  float s = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

}  // namespace

DDPM_CLONES void softmax_rows(float* s, int64_t rows, int64_t n, float scale, float* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = s + r * n;
    const float m = scale * row_max(x, n);  // scale > 0: the max of the scaled row
    const float sum = exp_shift_sum(x, n, scale, m);
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; ++j) x[j] *= inv;
    lse[r] = m + std::log(sum);
  }
}

DDPM_CLONES void softmax_rows_from_lse(float* s, int64_t rows, int64_t n, float scale, const float* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = s + r * n;
    const float shift = lse[r];
    for (int64_t j = 0; j < n; ++j) x[j] = exp_approx(scale * x[j] - shift);
  }
}

DDPM_CLONES void softmax_backward_rows(float* dp, const float* p, int64_t rows, int64_t n, float scale,
                                       const float* delta) {
  for (int64_t r = 0; r < rows; ++r) {
    float* g = dp + r * n;
    const float* pr = p + r * n;
    const float dl = delta[r];
    for (int64_t j = 0; j < n; ++j) g[j] = scale * pr[j] * (g[j] - dl);
  }
}

DDPM_CLONES void row_dots(const float* a, const float* b, int64_t rows, int64_t n, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = dot(a + r * n, b + r * n, n);
}

}  // namespace ddpm::kernels
