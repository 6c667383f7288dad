// parallel_mm.h — fp32 matrix products on the CPU spread over torch's threads: the BLAS under LibTorch runs
// single-threaded here (runtime.h), so a plain torch::bmm or torch::linear would use one core. Differentiable
// (their gradients are the same products again). Other dtypes and devices go to LibTorch as they are (bf16
// through oneDNN, which threads itself). Used by the UNet's attention and the DiT's linears and attention.
// Not here: dtype casts (weight_cast.h).
#pragma once

#include <torch/torch.h>

namespace ddpm {

// a [B,M,K] @ b [B,K,N] -> [B,M,N]: one BLAS call per batch element, spread over the threads.
torch::Tensor batched_mm(const torch::Tensor& a, const torch::Tensor& b);

// x [..., K] @ wᵀ + b, w [N,K], b [N] or undefined -> [..., N] (torch::linear): the rows of x spread over the
// threads, one BLAS call each.
torch::Tensor threaded_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

}  // namespace ddpm
