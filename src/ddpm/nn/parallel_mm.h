// parallel_mm.h — fp32 linear layers on the CPU spread over torch's threads: the BLAS under LibTorch runs
// single-threaded here (runtime.h), so a plain torch::linear would use one core. Differentiable (the gradients
// are the same products again). Used by the DiT's linears. Not here: dtype casts (weight_cast.h), attention
// (attention.h).
#pragma once

#include <torch/torch.h>

namespace ddpm {

// x [..., K] @ wᵀ + b, w [N,K], b [N] or undefined -> [..., N] (torch::linear): the rows of x spread over the
// threads, one BLAS call each.
torch::Tensor threaded_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

}  // namespace ddpm
