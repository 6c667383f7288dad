// simd.h — what the hand-written CPU kernels share: DDPM_CLONES (GCC target_clones: build a function for
// AVX-512, AVX2 and the x86-64 baseline, picked at load time) and bf16 <-> fp32 by their bits (bf16 is the top
// half of an fp32; rounding to nearest even, NaN kept a NaN). Torch-free. Not here: the kernels.
#pragma once

#include <cstdint>
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
  return static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : r);
}

}  // namespace ddpm
