// vp_sde.h — the reverse-time VP SDE of Song et al. 2021 solved by Euler–Maruyama, on the trained discrete
// schedule. First order (weak order 1); not the predictor–corrector sampler (pc.h) and not ancestral sampling
// (ddpm_sampler.h), though with many steps it approaches both.
//
// Notation (Song, Sohl-Dickstein, Kingma, Kumar, Ermon, Poole 2021, "Score-Based Generative Modeling through
// Stochastic Differential Equations"):
//   forward VP SDE (eq. 11)   dx = −½ β(t) x dt + √β(t) dw        drift f(x, t) = −½β(t) x, diffusion g = √β(t)
//   reverse SDE (eq. 6)       dx = [f(x, t) − g(t)² ∇ₓ log p_t(x)] dt + g(t) dw̄   (time runs backwards)
//   score of an ε-model       ∇ₓ log p_t(x) = −ε̂(x, t)/√(1 − ᾱ_t)                   (σ_t of the VP marginal)
//   visited times             τ_S > … > τ_1 of sampler.h's time_grid (uniform integer timesteps by default),
//                             ᾱ_i = ᾱ_{τ_i}
//   β(t)Δt over one step      b_i = 1 − ᾱ_i/ᾱ_{i−1}: the β of the respaced chain (the DDPM sampler's), which is
//                             β_t itself when S = T — the discrete schedule read as a VP SDE with β(t)Δt = β_t
// One Euler–Maruyama step from τ_i to τ_{i−1}, z ~ N(0, I):
//   x_{i−1} = x_i + [½ b_i x_i + b_i ∇log p] + √b_i z = (1 + ½ b_i) x_i − (b_i/√(1 − ᾱ_i)) ε̂ + √b_i z
// To first order in b_i this is ancestral sampling with σ² = β (x_{i−1} = (x_i − b_i ε̂/√(1−ᾱ_i))/√(1 − b_i) + …).
// The last step, from τ_1 to ᾱ = 1 (σ = 0), has no SDE step: it returns x̂_0 = (x − √(1−ᾱ_1) ε̂)/√ᾱ_1, as
// every sampler here does (Song et al.'s "denoising" last step, taken to x̂_0). S steps cost S NFE.
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

struct VPSDEOptions {
  int64_t steps = 0;                   // S visited times; 0 = all T
  Spacing spacing = Spacing::Uniform;  // any spacing of sampler.h (fractional ones interpolate ᾱ)
  bool clip_x0 = true;                 // clip x̂_0 to [−1, 1] (ε̂, hence the score, recomputed from it)
  StepCallback on_step;
};

// x_T [B,C,H,W] (standard normal) -> x_0. Draws one noise of x's shape per step but the last.
torch::Tensor vp_sde_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                            const NoiseFn& noise, const VPSDEOptions& opts = {});

}  // namespace ddpm
