// ddim.h — DDIM (Song, Meng, Ermon 2021, "Denoising Diffusion Implicit Models"): the non-Markovian reverse
// process of eq. 12 with σ_t(η) of eq. 16 on a subsequence of the timesteps (§4.2). η = 0 is the deterministic
// DDIM sampler (an Euler step of the probability-flow ODE in (σ, x/√ᾱ), 1st order); η = 1 over all T steps is
// DDPM with the fixed-small variance β̃_t. Also DDIM inversion: the η = 0 map run from an image to its latent.
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

struct DDIMOptions {
  int64_t steps = 50;                  // model evaluations (= NFE)
  double eta = 0.0;                    // 0: deterministic; 1: DDPM-like (β̃) noise
  Spacing spacing = Spacing::Uniform;
  bool clip_x0 = true;                 // clip x̂_0 to [−1, 1] (and recompute ε from it)
  StepCallback on_step;
};

// x_T [B,C,H,W] -> x_0. Noise (η > 0 only) comes from `noise`; the last step goes to ᾱ = 1 and returns x̂_0.
torch::Tensor ddim_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const DDIMOptions& opts = {});

// DDIM inversion: x_0 [B,C,H,W] -> the latent x_{τ_S} whose η = 0 DDIM sample (same steps, spacing, no clipping)
// is approximately x_0. The forward ODE step mirrors eq. 12 with η = 0; the model is evaluated at the step's
// start (at τ_1 for the first step, from the clean image), as in the usual formulation
// (e.g. Mokady et al. 2023, "Null-text inversion", eq. 3). Exact for a model whose x̂_0 is constant.
torch::Tensor ddim_invert(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x0, int64_t steps,
                          Spacing spacing = Spacing::Uniform, const StepCallback& on_step = {});

}  // namespace ddpm
