// simd.h — what the hand-written CPU kernels share: DDPM_CLONES (GCC target_clones: build a function for
// AVX-512, AVX2 and the x86-64 baseline, picked at load time), bf16 <-> fp32 by their bits (bf16 is the top
// half of an fp32; rounding to nearest even, NaN kept a NaN) and a branch-free exp that vectorises.
// Torch-free. Not here: the kernels.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
#define DDPM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DDPM_CLONES
#endif
#define DDPM_INLINE inline __attribute__((always_inline))

namespace ddpm {

DDPM_INLINE float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

DDPM_INLINE uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = 0u - static_cast<uint32_t>((u & 0x7FFFFFFFu) > 0x7F800000u);  // all ones for a NaN
  return static_cast<uint16_t>((r & ~nan) | (0x7FC0u & nan));  // a select by mask: no branch, so loops vectorise
}

// Element i of an fp32 or bf16 (as bits) array, read or written as fp32: one kernel template serves both.
DDPM_INLINE float load(const float* p, int64_t i) { return p[i]; }
DDPM_INLINE float load(const uint16_t* p, int64_t i) { return bf16_bits_to_float(p[i]); }
DDPM_INLINE void store(float* p, int64_t i, float v) { p[i] = v; }
DDPM_INLINE void store(uint16_t* p, int64_t i, float v) { p[i] = float_to_bf16_bits(v); }

// exp(x): Cephes' expf (range reduction by ln 2, degree-6 polynomial), branch-free so that it
// vectorises; relative error ≈ 1e-7 on [-87, 88] (inputs are clamped there). n = round(x/ln 2) by the 1.5·2²³
// trick, whose low mantissa bits are then n itself: no float-to-int conversion, no rounding call.
DDPM_INLINE float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23
  const float t = x * 1.44269504088896341f + kMagic;
  const float n = t - kMagic;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t tb, mb;
  std::memcpy(&tb, &t, 4);
  std::memcpy(&mb, &kMagic, 4);
  const uint32_t e = (tb - mb + 127u) << 23;  // 2^n as float bits (n in [-126, 127])
  float s;
  std::memcpy(&s, &e, 4);
  return p * s;
}

}  // namespace ddpm
