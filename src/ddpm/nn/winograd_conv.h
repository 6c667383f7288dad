// winograd_conv.h — the fp32 3×3 convolution of training on AVX-512 CPUs through oneDNN's Winograd F(4×4, 3×3)
// kernels (Lavin & Gray 2016): forward, backward-data and backward-weights, as one autograd function. On the
// fmnist shapes (batch 64, 64–256 channels, 7–28 px) oneDNN 2.6's Winograd runs each pass 1.5–2.4× faster than the
// direct NHWC kernels LibTorch calls (docs/precision.md), and convolutions are most of fp32 training.
// Used only while gradients are recorded: inference (sampling, restoration, eval) keeps LibTorch's direct
// convolution, so its images do not change and stay independent of the batch size.
// Not here: bf16 (oneDNN has no bf16 Winograd: winograd_bf16.h is ours, for inference), strided or 1×1 convolutions, GPUs.
// Built where CMake finds oneDNN 2.x headers (Debian: libdnnl-dev, the library LibTorch 1.13 itself links);
// elsewhere available() is false and callers use torch::conv2d.
#pragma once

#include <torch/torch.h>

namespace ddpm {

// Compiled in (oneDNN 2.x found at build time), the CPU has AVX-512 (cpu_features(), so DDPM_CPU_ISA_MAX masks it)
// and not switched off (set_winograd_enabled(false) or DDPM_WINOGRAD=0 in the environment).
bool winograd_available();
// The switch alone (DDPM_WINOGRAD=0 or set_winograd_enabled(false) turn it off); it also governs winograd_bf16.h.
bool winograd_enabled();
void set_winograd_enabled(bool on);

// True when winograd_conv3x3 serves this convolution: available, CPU fp32 input [N,C,H,W] and weight [O,C,3,3]
// with a bias, C and O multiples of 16, stride 1, padding 1, no dilation or groups — and oneDNN has a Winograd
// kernel for the shape (checked once per shape).
bool winograd_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride,
                      int64_t padding, int64_t dilation, int64_t groups);

// y = conv2d(x, w, b, stride 1, padding 1), differentiable in x, w and b; y has x's memory format (NCHW or NHWC).
// Requires winograd_applies(x, w, b, 1, 1, 1, 1).
torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);  // [N,O,H,W]

}  // namespace ddpm
