// gelu.h — the tanh-approximated GELU of the DiT's MLP (torch::gelu(x, "tanh")) on the CPU through a
// vectorised kernel (gelu_kernel.h) spread over torch's threads, differentiable; fp32 and bf16 in and out.
// LibTorch 1.13's own runs at ≈ 230M elements/s on bf16 here, a quarter of the DiT's sampling time.
// Other devices and dtypes: torch::gelu. Not here: the exact (erf) GELU.
#pragma once

#include <torch/torch.h>

namespace ddpm {

torch::Tensor gelu_tanh(const torch::Tensor& x);  // same shape and dtype as x

}  // namespace ddpm
