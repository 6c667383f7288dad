// karras.h — the σ-space view of a VP (DDPM) model used by the EDM samplers (Karras, Aittala, Aila, Laine 2022,
// "Elucidating the Design Space of Diffusion-Based Generative Models"): the noise-level schedule of eq. 5
// and the denoiser D(x̂; σ) of an ε-model (Table 1, "VP" column with our discrete ᾱ).
//
// With σ = √((1 − ᾱ)/ᾱ) and x̂ = x_t/√ᾱ = x_0 + σ ε, the probability-flow ODE is dx̂/dσ = (x̂ − D(x̂; σ))/σ = ε̂
// (EDM eq. 3 with s(t) = 1, σ(t) = t). The model is evaluated at x_t = x̂/√(1 + σ²) and the fractional
// timestep t(σ) of Schedule::t_for_sigma.
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <vector>

namespace ddpm {

// EDM eq. 5: σ_i = (σ_max^{1/ρ} + i/(N−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i = 0..N−1, then σ_N = 0.
// N + 1 values, decreasing, the last 0. N = 1 gives {σ_max, 0}.
std::vector<double> karras_sigmas(int64_t n, double sigma_min, double sigma_max, double rho = 7.0);
// The same between the schedule's smallest and largest σ (σ_0 and σ_{T−1}).
std::vector<double> karras_sigmas(const Schedule& schedule, int64_t n, double rho = 7.0);

// The σ-space path of a time grid (sampler.h): the grid's times, descending, with their σ_t; then σ = 0.
struct SigmaPath {
  std::vector<double> t;      // N fractional timesteps, decreasing
  std::vector<double> sigma;  // N + 1 values, decreasing, the last 0
};
SigmaPath sigma_path(const Schedule& schedule, Spacing spacing, int64_t steps, double rho = 7.0);

// One evaluation in σ-space at timestep t: x̂ [B,C,H,W] -> (ε̂ = dx̂/dσ, x̂_0).
Denoised denoise_sigma(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_hat, double t,
                       bool clip);

struct KarrasOptions {
  int64_t steps = 20;                 // N: σ intervals (Euler: N NFE; Heun: 2N − 1 NFE)
  Spacing spacing = Spacing::Karras;  // EDM's; any other spacing of sampler.h works too
  double rho = 7.0;
  bool clip_x0 = true;                // clip x̂_0 to [−1, 1] (then ε̂ = (x̂ − x̂_0)/σ)
  StepCallback on_step;
};

}  // namespace ddpm
