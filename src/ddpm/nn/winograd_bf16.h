// winograd_bf16.h — the bf16 3×3 convolution on CPUs with AVX-512 BF16 but no AMX: Winograd F(2×2, 3×3) (Lavin &
// Gray 2016, §4.1) with the 16 elementwise products summed over channels (or tiles) as bf16 GEMMs (VDPBF16PS,
// fp32 accumulation), written here because oneDNN has no bf16 Winograd. It does 2.25× fewer multiplications
// than the direct convolution; on the fmnist shapes (batch 64, 64–256 channels, 7–28 px) its forward runs
// 1.1–1.7× faster than oneDNN's bf16 direct kernels, which are already at the chip's bf16 peak
// (docs/precision.md, bench_winograd_bf16).
// Numerics: the transforms are exact in fp32 and rounded once to bf16, so the relative error is ≈2× the direct
// bf16 convolution's (≈0.45% vs 0.2% of the output's norm; test_winograd). Each image's output is computed
// independently of the others (a tile is one GEMM row), so results do not depend on the batch.
// Training: all three passes — forward, backward-data (the same convolution of the output gradient with the
// flipped, transposed weights) and backward-weights (GEMMs over the tiles of the transformed input and output
// gradient, then Gᵀ·G back to 3×3; fp32 result) where it pays (≤ 128×128 channels, ≥ 14×14 pixels; elsewhere
// LibTorch's bf16 kernel).
// Not here: F(4×4, 3×3) (its transforms amplify bf16 rounding to ≈2.5% error), AMX CPUs (oneDNN's AMX kernels are
// faster), fp32 (winograd_conv.h).
#pragma once

#include <torch/torch.h>

namespace ddpm {

// The CPU has AVX-512 BF16 and no AMX (cpu_features(), so DDPM_CPU_ISA_MAX masks it), the build is for x86-64
// with GCC or Clang, and Winograd is not switched off (set_winograd_enabled(false) or DDPM_WINOGRAD=0).
bool winograd_bf16_available();

// True when winograd_bf16_conv3x3 serves this convolution: available, CPU bf16 channels-last x [N,C,H,W], fp32
// weight [O,C,3,3] and bias [O] (or none), C and O multiples of 16, stride 1, padding 1, no dilation or groups.
bool winograd_bf16_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride,
                           int64_t padding, int64_t dilation, int64_t groups);

// The transformed weights U = G g Gᵀ of every (output, input) channel pair, rounded to bf16, in the layout the
// GEMMs read: [16, C/2, O, 2] (input channels in pairs, VDPBF16PS's operand). w: fp32 [O,C,3,3].
torch::Tensor winograd_bf16_weights(const torch::Tensor& w);  // [16, C/2, O, 2] bf16

// y = conv2d(x, w, b, stride 1, padding 1) in bf16, channels-last, from winograd_bf16_weights(w) and the fp32
// bias b (undefined: none). Not differentiable. Requires winograd_bf16_applies(x, w, b, 1, 1, 1, 1).
torch::Tensor winograd_bf16_conv3x3(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& b);  // [N,O,H,W]

// dL/dw [O,C,3,3] fp32 of that convolution from x [N,C,H,W] and dL/dy [N,O,H,W] (bf16, channels-last):
// dL/dU_ξ = Σ over tiles of (A dY Aᵀ)_ξ ⊙ (Bᵀ d B)_ξ as bf16 GEMMs over the tiles (fp32 sums), dL/dg = Gᵀ dL/dU G.
torch::Tensor winograd_bf16_weight_grad(const torch::Tensor& x, const torch::Tensor& dy);  // [O,C,3,3]

// The same convolution, differentiable in x, w and b (bf16 training with fp32 master weights): y, dL/dx and dL/dw
// by Winograd, dL/db summed in fp32. Requires winograd_bf16_applies(x, w, b, 1, 1, 1, 1) and a defined b.
torch::Tensor winograd_bf16_conv3x3_train(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);  // [N,O,H,W]

}  // namespace ddpm
