// dropout.h — dropout (Srivastava et al. 2014) whose mask is a counter-based hash of (seed, element index)
// instead of one Bernoulli draw per element: LibTorch 1.13's CPU bernoulli_ without MKL is a serial Mersenne-
// Twister loop (15% of an fmnist training step on 2 cores). The seed is one 64-bit draw from the default CPU
// generator, so runs stay reproducible under torch::manual_seed; the backward pass recomputes the mask from the
// seed (nothing saved). Only the mask's random stream differs from torch::dropout; its distribution is the
// same: each element kept with probability 1 − p and scaled by 1/(1 − p).
// Not here: the network (unet.h).
#pragma once

#include <torch/torch.h>

namespace ddpm {

// x (any shape; fp32 or bf16 on the CPU take the fast path, anything else torch::dropout) -> x's shape, dtype
// and memory format. Identity when !train or p == 0.
torch::Tensor hashed_dropout(const torch::Tensor& x, double p, bool train);

}  // namespace ddpm
