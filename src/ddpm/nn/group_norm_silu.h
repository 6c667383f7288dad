// group_norm_silu.h — GroupNorm with an optional per-channel add before it and an optional SiLU after it, as one
// autograd op: silu(GroupNorm(x + add)). On the CPU with channels-last fp32 or bf16 input it runs the fused
// kernels of group_norm_kernel.h (statistics in fp32, one pass to normalise and activate; LibTorch 1.13's own
// GroupNorm is ~20× slower in channels-last than in NCHW and refuses bf16 input with fp32 weights). Anything
// else (CUDA, NCHW, other dtypes) takes the composite LibTorch path, with the statistics in fp32.
// The ResBlock uses `add` to fold in the time-embedding projection (h + temb_proj(...) then norm2).
// Not here: the network (unet.h).
#pragma once

#include <torch/torch.h>

namespace ddpm {

// x [B,C,H,W] (fp32 or bf16), add [B,C] fp32 or undefined, gamma/beta [C] fp32 -> [B,C,H,W] of x's dtype and
// memory format. Differentiable in x, add, gamma and beta.
torch::Tensor group_norm_silu(const torch::Tensor& x, const torch::Tensor& add, const torch::Tensor& gamma,
                              const torch::Tensor& beta, int64_t groups, double eps, bool silu);

// The same by composite LibTorch ops (fp32 statistics): the fallback, and the reference the tests compare with.
torch::Tensor group_norm_silu_reference(const torch::Tensor& x, const torch::Tensor& add, const torch::Tensor& gamma,
                                        const torch::Tensor& beta, int64_t groups, double eps, bool silu);

// True when group_norm_silu takes the fused CPU kernels for x.
bool group_norm_silu_fused(const torch::Tensor& x);

}  // namespace ddpm
