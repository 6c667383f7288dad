// likelihood.h — the variational bound of DDPM in bits per dimension (Ho et al. 2020, eq. 5 and §3.3;
// Nichol & Dhariwal 2021, §2 and their calc_bpd_loop):
//   L = L_T + Σ_{t=2..T} L_{t−1} + L_0
//   L_T     = KL(q(x_T | x_0) ‖ N(0, I))                                       the prior term
//   L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t)), x_t ~ q(x_t | x_0)   Gaussians with eq. 7's posterior
//   L_0     = −log p_θ(x_0 | x_1), the discretized Gaussian decoder of eq. 13: 256 bins of width 2/255 on [−1, 1],
//             the outermost bins open to ±∞
// p_θ(x_{t−1} | x_t) has mean μ̃(x̂_0, x_t) (eq. 7 with x̂_0 from the model's ε, eq. 15) and a fixed variance:
// fixed_small β̃_t, fixed_large β_t except at t = 1 (code index 0), where β̃ replaces it (improved-diffusion's
// convention, so that the decoder's width is β̃_1 in both cases; β_1 would be an arbitrary choice there).
// Every term is in nats summed over an image's D = C·H·W dimensions, divided by D·ln 2 for bits/dim.
// Code index t = 0..T−1 is the paper's t = 1..T (schedule.h): the KL terms are at t = 1..T−1, L_0 at t = 0.
// Size legend: B batch, C×H×W image.
#pragma once

#include "ddpm/samplers/sampler.h"
#include "ddpm/schedule.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace ddpm {

// KL(N(μ₁, e^{lv₁}) ‖ N(μ₂, e^{lv₂})) elementwise, in nats (broadcasting).
torch::Tensor normal_kl(const torch::Tensor& mean1, const torch::Tensor& logvar1, const torch::Tensor& mean2,
                        const torch::Tensor& logvar2);

// log p(x) elementwise under the discretized Gaussian N(means, e^{2·log_scales}) with 256 bins on [−1, 1]
// (x must be on the grid −1 + 2k/255). Uses the exact Φ (erfc), in float64.
torch::Tensor discretized_gaussian_log_likelihood(const torch::Tensor& x, const torch::Tensor& means,
                                                  const torch::Tensor& log_scales);

// Log-variance of p_θ(x_{t−1} | x_t) per code timestep: [T] f64 (see above).
torch::Tensor reverse_log_variance(const Schedule& s, VarianceType v);

// Which KL timesteps (code t in 1..T−1) a bound evaluates and the weight of each: all of them with weight 1
// (steps ≥ T − 1 or 0), or `steps` strata of consecutive timesteps, one timestep at each stratum's middle with
// weight = the stratum's size (a stratified estimate of the sum; the weights add up to T − 1).
std::vector<std::pair<int64_t, double>> vb_timesteps(int64_t T, int64_t steps);

struct BoundTerms {
  torch::Tensor prior;    // [B] L_T, nats per image
  torch::Tensor kl;       // [B] Σ L_{t−1} (weighted as vb_timesteps says)
  torch::Tensor decoder;  // [B] L_0
  torch::Tensor total;    // [B] sum
  torch::Tensor bpd;      // [B] total / (D ln 2)
};

// The bound for images x0 [B,C,H,W] in [−1, 1] (on the 256-level grid) under `model` (an ε-model: prediction.h's
// adapter makes one of any network). `noise(shape)` draws the ε of each x_t ~ q(x_t | x_0); clip clamps x̂_0 to
// [−1, 1] as the samplers do.
BoundTerms variational_bound(const Schedule& s, const EpsModel& model, const torch::Tensor& x0, VarianceType v,
                             const std::vector<std::pair<int64_t, double>>& timesteps, const NoiseFn& noise,
                             bool clip = true);

}  // namespace ddpm
