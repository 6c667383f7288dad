// heun.h — Heun's 2nd-order method on the probability-flow ODE in σ (Karras et al. 2022, Algorithm 1,
// deterministic: S_churn = 0) on the Karras σ schedule. N steps cost 2N − 1 NFE: every step but the last, which
// goes to σ = 0, adds a correction evaluation.
#pragma once

#include "ddpm/samplers/karras.h"

namespace ddpm {

// x_T [B,C,H,W] (standard normal, the VP start) -> x_0.
torch::Tensor heun_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const KarrasOptions& opts = {});

}  // namespace ddpm
