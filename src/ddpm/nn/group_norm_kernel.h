// group_norm_kernel.h — the CPU kernels behind group_norm_silu.h: GroupNorm (Wu & He 2018) of one image stored
// channels-last ([P = H·W positions, C channels], channels contiguous), with an optional per-channel add before
// the norm and an optional SiLU after it, forward and backward, for fp32 or bf16 activations. Statistics, the
// affine parameters and every accumulation are fp32 (the per-group combine in fp64); bf16 values are read and
// written as their 16 bits (round to nearest even). Raw pointers, one image per call, no threads, no LibTorch:
// the caller (group_norm_silu.cpp) parallelises over the batch. Compiled once per ISA (AVX-512, AVX2, baseline)
// and dispatched at load time.
// Not here: the autograd wrapper, layouts other than channels-last, devices other than the CPU.
#pragma once

#include <cstdint>

namespace ddpm::kernels {

struct GroupNormShape {
  int64_t P = 0;     // positions per image (H·W)
  int64_t C = 0;     // channels
  int64_t G = 0;     // groups (C % G == 0)
  float eps = 1e-6f;
  bool silu = true;  // y = silu(GN(x + add)) instead of GN(x + add)
};

// y = [silu](γ ⊙ (z − μ_g)/√(σ²_g + ε) + β), z = x + add (add broadcast over positions; nullptr = 0).
// Writes y [P,C], and mean/rstd [G] of z (kept for the backward pass).
void group_norm_forward(const float* x, const float* add, const float* gamma, const float* beta, float* y,
                        float* mean, float* rstd, const GroupNormShape& s);
void group_norm_forward(const uint16_t* x, const float* add, const float* gamma, const float* beta, uint16_t* y,
                        float* mean, float* rstd, const GroupNormShape& s);

// From dy [P,C]: dx [P,C] (= dz), and per-image sums dadd [C] (nullptr: not wanted), dgamma [C], dbeta [C].
// scratch: P·C floats of work space.
void group_norm_backward(const float* x, const float* dy, const float* add, const float* gamma, const float* beta,
                         const float* mean, const float* rstd, float* dx, float* dadd, float* dgamma, float* dbeta,
                         float* scratch, const GroupNormShape& s);
void group_norm_backward(const uint16_t* x, const uint16_t* dy, const float* add, const float* gamma,
                         const float* beta, const float* mean, const float* rstd, uint16_t* dx, float* dadd,
                         float* dgamma, float* dbeta, float* scratch, const GroupNormShape& s);

// The instruction set the kernels were dispatched to on this CPU: "avx512", "avx2" or "baseline".
const char* group_norm_isa();

}  // namespace ddpm::kernels
