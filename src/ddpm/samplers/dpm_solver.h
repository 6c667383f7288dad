// dpm_solver.h — DPM-Solver++ multistep (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
// Diffusion Probabilistic Models"): the probability-flow ODE solved in log-SNR time λ = log(√ᾱ/√(1−ᾱ)) with the
// data (x̂_0) prediction, reusing the previous model evaluations (one NFE per step).
//   order 2: DPM-Solver++(2M), Algorithm 2 of the paper;
//   order 3: DPM-Solver++(3M), the third-order multistep update of the authors' reference code (the Taylor
//            expansion of eq. 8 to second order in λ, with D1 and D2 from the last three x̂_0 evaluations).
// Lower order where the history is short (the first steps) and at the end: the last step goes to σ = 0
// (λ = ∞), where only the first-order update is defined and returns x̂_0; with order 3 the step before it is
// second order (as diffusers' lower_order_final does for short schedules).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

struct DPMSolverOptions {
  int64_t steps = 20;                 // model evaluations (= NFE)
  int order = 2;                      // 1 (= DDIM), 2 (2M) or 3 (3M)
  Spacing spacing = Spacing::LogSNR;  // the paper's choice for pixel-space models (uniform t is much worse here)
  bool clip_x0 = true;                // clip x̂_0 to [−1, 1] (the paper's thresholding, at ratio 1)
  StepCallback on_step;
};

// Deterministic: x_T [B,C,H,W] -> x_0.
torch::Tensor dpm_solver_pp_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                                   const DPMSolverOptions& opts = {});

}  // namespace ddpm
