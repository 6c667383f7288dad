// ddpm_sampler.h — ancestral sampling of DDPM (Ho et al. 2020, Algorithm 2), optionally on a respaced subset of
// the timesteps (Nichol & Dhariwal 2021, §4: the same model, a shorter chain with recomputed β).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

struct DDPMSamplerOptions {
  int64_t steps = 0;                              // reverse steps; 0 = all T
  Spacing spacing = Spacing::Uniform;             // which timesteps when steps < T
  VarianceType variance = VarianceType::FixedLarge;
  bool clip_x0 = true;                            // clip the x_0 prediction to [-1, 1] before the posterior mean
  StepCallback on_step;                           // optional progress
};

// Runs the reverse chain from x_T (given, [B,C,H,W]) to x_0. Per-step noise comes from `noise` (CPU) and is
// moved to x_T's device, so one seed gives the same images everywhere. The last step adds no noise and,
// since its ᾱ_{t−1} = 1, returns the final (clipped) x_0 prediction.
torch::Tensor ddpm_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const DDPMSamplerOptions& opts = {});

// One reverse step of Algorithm 2 between two visited noise levels ᾱ_t > ᾱ_prev (ᾱ_prev = 1: the last step),
// with β = 1 − ᾱ_t/ᾱ_prev: the posterior mean μ̃(x_t, x̂_0) of eq. 7 plus σ z (σ² = β̃ or β by `variance`);
// no noise, hence no draw from `noise`, on the last step. x, x0: [B,C,H,W] -> x_prev [B,C,H,W]. The restoration
// methods take their reverse steps through this too.
torch::Tensor ddpm_step(const torch::Tensor& x, const torch::Tensor& x0, double a_t, double a_prev,
                        VarianceType variance, const NoiseFn& noise);

}  // namespace ddpm
