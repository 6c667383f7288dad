// ddnm.h — DDNM and DDNM+ (Wang, Yu, Zhang 2022, "Zero-Shot Image Restoration Using Denoising Diffusion
// Null-Space Model"): for y = A x_0 + n, every step corrects the model's x̂_0 in the range space of A and keeps
// its null-space content,
//   x̂_0 ← x̂_0 − λ_t A†(A x̂_0 − y)                                               (eq. 13; DDNM+: eq. 17, Σ_t = λ_t I)
// then takes the DDIM-like step of the official code, with its η (not DDIM's η of eq. 16):
//   x_{t−1} = √ᾱ_{t−1} x̂_0 + √(1−ᾱ_{t−1}) (√(1−η²) ε̂ + η z)
// Noiseless (σ_y = 0): λ_t = 1, and the last step returns a corrected x̂_0, so A x = y to float precision.
// DDNM+ (σ_y > 0, the paper's eq. 19 in this step's terms): the correction carries √ᾱ_{t−1} λ_t σ_y of y's noise
// into x_{t−1}, so the fresh noise shrinks to keep the total at c = √(1−ᾱ_{t−1}) η:
//   λ_t = 1, γ_t = c² − ᾱ_{t−1} σ_y²   if c ≥ √ᾱ_{t−1} σ_y;   else λ_t = c / (√ᾱ_{t−1} σ_y), γ_t = 0,
// and z is scaled by √γ_t. (On the last step c = 0: x̂_0 is not pulled towards the noisy y.) Measured on Gaussian
// data (tests/test_restoration.cpp): DDNM+ moves the result only part of the way from y to the posterior mean and
// nearly collapses its variance given y; the known-σ denoiser (denoise.h) is the better denoiser.
// Not here: the operators (operators.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/restoration/operators.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

struct DDNMOptions {
  int64_t steps = 100;   // model calls, respaced uniformly over 0..T−1
  double eta = 0.85;     // the official default
  double sigma_y = 0.0;  // noise std of y in model units ([−1, 1]; twice the [0, 1] std); > 0 selects DDNM+
  bool clip_x0 = true;   // clip x̂_0 (before the correction)
  StepCallback on_step;
};

// x_T [B,C,H,W], y = A x_0 (+ n) in A's observation shape -> x_0 [B,C,H,W]. One draw per step while η > 0 and
// the step adds noise.
torch::Tensor ddnm_restore(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                           const LinearOperator& op, const torch::Tensor& y, const NoiseFn& noise,
                           const DDNMOptions& opts = {});

}  // namespace ddpm
