// dropout.cpp — see dropout.h. Mask bit of element i (in memory order): keep iff
//   h(i) = mix(mix(i · 0x9E3779B9 ⊕ k₀) ⊕ k₁) ≥ ⌊p · 2³²⌋,   k₀, k₁ the two halves of the seed,
// with mix = the "lowbias32" integer hash (Wellons 2018: xor-shift-multiply, full avalanche). 32-bit integer
// operations only, so it vectorises on AVX2 as well as AVX-512.
#include "ddpm/nn/dropout.h"

#include "ddpm/util/simd.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <mutex>

namespace ddpm {
namespace {

DDPM_INLINE uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// keep[j] = scale or 0 for the elements i0 + j, j < n (n <= kBlock): the hash alone in one loop (32-bit lanes).
constexpr int64_t kBlock = 1024;
DDPM_INLINE void keep_factors(float* keep, uint32_t i0, uint32_t n, uint32_t k0, uint32_t k1, uint32_t thr,
                              float scale) {
  for (uint32_t j = 0; j < n; ++j) {
    const uint32_t h = mix32(mix32((i0 + j) * 0x9E3779B9u ^ k0) ^ k1);
    keep[j] = h >= thr ? scale : 0.0f;
  }
}

// y[i] = x[i] · keep(i) for i in [i0, i1), block by block (GCC vectorises the hash, the multiply and the bf16
// rounding well apart, not fused in one loop).
DDPM_CLONES void mask_f32(const float* x, float* y, int64_t i0, int64_t i1, uint32_t k0, uint32_t k1, uint32_t thr,
                          float scale) {
  float keep[kBlock];
  for (int64_t b = i0; b < i1; b += kBlock) {
    const int64_t n = std::min(kBlock, i1 - b);
    keep_factors(keep, static_cast<uint32_t>(b), static_cast<uint32_t>(n), k0, k1, thr, scale);
    for (int64_t j = 0; j < n; ++j) y[b + j] = x[b + j] * keep[j];
  }
}
DDPM_CLONES void mask_bf16(const uint16_t* x, uint16_t* y, int64_t i0, int64_t i1, uint32_t k0, uint32_t k1,
                           uint32_t thr, float scale) {
  float keep[kBlock];
  for (int64_t b = i0; b < i1; b += kBlock) {
    const int64_t n = std::min(kBlock, i1 - b);
    keep_factors(keep, static_cast<uint32_t>(b), static_cast<uint32_t>(n), k0, k1, thr, scale);
    for (int64_t j = 0; j < n; ++j) keep[j] *= bf16_bits_to_float(x[b + j]);
    for (int64_t j = 0; j < n; ++j) y[b + j] = float_to_bf16_bits(keep[j]);
  }
}

// The mask applied to x's storage in memory order (x non-overlapping and dense), into a tensor like x.
torch::Tensor apply_mask(const torch::Tensor& x, uint64_t seed, double p) {
  auto y = torch::empty_like(x);  // same strides as x (preserve format)
  const auto k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const auto thr = static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const bool bf16 = x.scalar_type() == torch::kBFloat16;
  const void* xp = x.data_ptr();
  void* yp = y.data_ptr();
  at::parallel_for(0, x.numel(), 32768, [&](int64_t i0, int64_t i1) {
    if (bf16)
      mask_bf16(static_cast<const uint16_t*>(xp), static_cast<uint16_t*>(yp), i0, i1, k0, k1, thr, scale);
    else
      mask_f32(static_cast<const float*>(xp), static_cast<float*>(yp), i0, i1, k0, k1, thr, scale);
  });
  return y;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct HashedDropoutFn : torch::autograd::Function<HashedDropoutFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, double p, int64_t seed) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["sizes"] = x.sizes().vec();
    ctx->saved_data["strides"] = x.strides().vec();
    return apply_mask(x, static_cast<uint64_t>(seed), p);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const double p = ctx->saved_data["p"].toDouble();
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    // The mask is by memory position: bring the gradient into the input's strides first.
    const auto sizes = ctx->saved_data["sizes"].toIntVector(), strides = ctx->saved_data["strides"].toIntVector();
    auto g = grads[0];
    if (g.strides().vec() != strides) g = torch::empty_strided(sizes, strides, g.options()).copy_(g);
    return {apply_mask(g, seed, p), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor hashed_dropout(const torch::Tensor& x, double p, bool train) {
  if (!train || p == 0.0) return x;
  const bool fast = x.device().is_cpu() && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
                    x.is_non_overlapping_and_dense() && x.numel() < (int64_t{1} << 32);
  if (!fast) return torch::dropout(x, p, train);
  uint64_t seed = 0;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    seed = at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
  }
  return HashedDropoutFn::apply(x, p, static_cast<int64_t>(seed));
}

}  // namespace ddpm
