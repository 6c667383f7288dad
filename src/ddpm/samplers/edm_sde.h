// edm_sde.h — EDM's stochastic sampler (Karras et al. 2022, Algorithm 2): Heun steps on the probability-flow ODE in
// σ with "churn" — before each step, noise raises σ_i to σ̂_i = (1 + γ_i) σ_i — on the Karras σ grid. Not a
// discretisation of Song et al.'s reverse SDE (that is vp_sde.h); not the Heun sampler with its noise switched
// off by a flag: with s_churn = 0 it is a separate loop that computes exactly what heun.h computes.
//
// Notation (EDM §4, Algorithm 2; σ = t of the paper, x̂ = x_t/√ᾱ):
//   N              steps (σ intervals); σ_0 > … > σ_{N−1} > σ_N = 0 the grid (karras.h, eq. 5)
//   γ_i            min(S_churn/N, √2 − 1) if σ_i ∈ [S_tmin, S_tmax], else 0              (line 3)
//   σ̂_i            (1 + γ_i) σ_i, capped at σ_{T−1} (the largest σ the model was trained on) (line 5)
//   x̂_i            x_i + √(σ̂_i² − σ_i²) · S_noise · z,  z ~ N(0, I)                       (lines 4, 6)
//   d_i            ε̂(x̂_i; σ̂_i) = (x̂_i − D(x̂_i; σ̂_i))/σ̂_i                                 (line 7)
//   x_{i+1}        x̂_i + (σ_{i+1} − σ̂_i) d_i, then, if σ_{i+1} ≠ 0, the Heun correction with
//                  d' = ε̂(x_{i+1}; σ_{i+1}): x_{i+1} = x̂_i + (σ_{i+1} − σ̂_i)(d_i + d')/2   (lines 8–11)
// N steps cost 2N − 1 NFE (the last step, to σ = 0, is Euler, and lands on x̂_0), with or without churn.
//
// Defaults are the paper's CIFAR-10 VP settings (EDM Table 5): S_churn = 30, S_tmin = 0.01, S_tmax = 1,
// S_noise = 1.007. S_noise > 1 deliberately adds more noise than the exact SDE would (it offsets a real network's
// tendency to over-denoise), so on an exact model the output variance is biased upwards (tests: S_noise = 1).
#pragma once

#include "ddpm/samplers/karras.h"

namespace ddpm {

struct EDMSDEOptions : KarrasOptions {  // steps, spacing, rho, clip_x0, on_step as for Euler/Heun
  double s_churn = 30.0;                // S_churn ≥ 0: total churn; γ_i = min(S_churn/N, √2 − 1)
  double s_tmin = 0.01;                 // churn only where S_tmin ≤ σ_i ≤ S_tmax (σ units, x̂ scale)
  double s_tmax = 1.0;                  // may be +∞
  double s_noise = 1.007;               // S_noise ≥ 0: scale of the added noise
};

// Throws if s_churn < 0, s_noise < 0, s_tmin < 0 or s_tmax < s_tmin (any of them NaN included).
void check_edm_sde_options(const EDMSDEOptions& opts);

// x_T [B,C,H,W] (standard normal, the VP start) -> x_0. The churn noise is drawn from `noise` (one draw of x's
// shape per churned step, none when γ_i = 0), so with s_churn = 0 this is heun_sample bit for bit.
torch::Tensor edm_sde_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                             const NoiseFn& noise, const EDMSDEOptions& opts = {});

}  // namespace ddpm
