// euler.h — Euler's method on the probability-flow ODE in σ (Karras et al. 2022, Algorithm 1 without the 2nd-order
// correction, S_churn = 0) on the Karras σ schedule. First order; N steps cost N NFE; the last step lands on
// σ = 0 and returns x̂_0.
#pragma once

#include "ddpm/samplers/karras.h"

namespace ddpm {

// x_T [B,C,H,W] (standard normal, the VP start) -> x_0.
torch::Tensor euler_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                           const KarrasOptions& opts = {});

}  // namespace ddpm
