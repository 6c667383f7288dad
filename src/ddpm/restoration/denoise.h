// denoise.h — removing Gaussian noise of a known σ with an unconditional model (the "start the reverse chain at
// the matching noise level" denoiser; Song et al. 2021 and SDEdit's observation that a noisy image is a point of
// the forward process). For y = x_0 + σ′ n (σ′ in model units: twice the [0, 1] std):
//   t* = the smallest t with σ_t/√ᾱ_t ≥ σ′, x_{t*} = √ᾱ_{t*} y + √(1 − ᾱ_{t*} − ᾱ_{t*} σ′²) z,
// which is distributed exactly as q(x_{t*} | x_0) (the added z tops the noise up from σ′√ᾱ to σ_{t*}), then the
// DDPM reverse chain from t*. The result is a posterior sample; the mean of several estimates E[x_0 | y].
// Not here: DDNM+ with the identity operator (ddnm.h), the classical Gaussian-filter baseline (baselines.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

// t* for σ′ (model units). Throws if σ′ ≤ 0 or larger than the schedule's largest σ_t/√ᾱ_t.
int64_t denoise_start(const Schedule& schedule, double sigma_model);

struct DenoiseOptions {
  int64_t steps = 50;  // reverse steps from t*, capped at t* + 1
  VarianceType variance = VarianceType::FixedSmall;
  bool clip_x0 = true;
  StepCallback on_step;
};

// y [B,C,H,W] noisy, in [−1, 1] units (not clamped) -> x_0 [B,C,H,W]. The first draw from `noise` tops up x_{t*}.
torch::Tensor denoise_known_sigma(const Schedule& schedule, const EpsModel& model, const torch::Tensor& y,
                                  double sigma_model, const NoiseFn& noise, const DenoiseOptions& opts = {});

}  // namespace ddpm
