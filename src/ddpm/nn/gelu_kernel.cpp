// gelu_kernel.cpp — see gelu_kernel.h. Plain loops the compiler vectorises (branch-free exp). Not here: threads.
#include "ddpm/nn/gelu_kernel.h"

#include "ddpm/util/simd.h"

namespace ddpm::kernels {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

DDPM_INLINE float sigma_2u(float x) {  // σ(2u) = 1 / (1 + exp(−2u))
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  return 1.0f / (1.0f + exp_approx(-2.0f * u));
}

template <typename T>
DDPM_INLINE void forward_impl(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(x, i);
    store(y, i, v * sigma_2u(v));
  }
}

template <typename T>
DDPM_INLINE void backward_impl(const T* x, const T* dy, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(x, i), s = sigma_2u(v);
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    store(dx, i, load(dy, i) * (s + v * 2.0f * s * (1.0f - s) * du));
  }
}

}  // namespace

DDPM_CLONES void gelu_tanh_forward(const float* x, float* y, int64_t n) { forward_impl(x, y, n); }
DDPM_CLONES void gelu_tanh_forward(const uint16_t* x, uint16_t* y, int64_t n) { forward_impl(x, y, n); }
DDPM_CLONES void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n) { backward_impl(x, dy, dx, n); }
DDPM_CLONES void gelu_tanh_backward(const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t n) {
  backward_impl(x, dy, dx, n);
}

}  // namespace ddpm::kernels
