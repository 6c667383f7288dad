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

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

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

// A run of consecutive KL timesteps [lo, hi) (code t in 1..T−1). The bound evaluates one timestep per stratum
// and image, drawn uniformly from it, weighted by the stratum's size hi − lo: an unbiased (stratified Monte
// Carlo) estimate of the stratum's sum, exact when hi − lo = 1.
struct KlStratum {
  int64_t lo;
  int64_t hi;
};

// The strata of a bound: T − 1 strata of one timestep each — the exact sum — when steps is 0 or ≥ T − 1;
// otherwise `steps` strata of (nearly) equal size covering 1..T−1.
std::vector<KlStratum> vb_strata(int64_t T, int64_t steps);

struct BoundTerms {
  torch::Tensor prior;    // [B] L_T, nats per image
  torch::Tensor kl;       // [B] Σ L_{t−1} (the exact sum, or its stratified estimate: see vb_strata)
  torch::Tensor decoder;  // [B] L_0
  torch::Tensor total;    // [B] sum
  torch::Tensor bpd;      // [B] total / (D ln 2)
};

// The bound for images x0 [B,C,H,W] in [−1, 1] (on the 256-level grid) under `model` (an ε-model: prediction.h's
// adapter makes one of any network). `noise(shape)` draws the ε of each x_t ~ q(x_t | x_0) and, in a stratum of
// more than one timestep, each image's timestep (t = lo + ⌊Φ(z)·(hi − lo)⌋ from a standard normal z, Φ(z) being
// uniform on (0, 1)), so one seeded source makes the whole bound reproducible; clip clamps x̂_0 to [−1, 1] as
// the samplers do.
BoundTerms variational_bound(const Schedule& s, const EpsModel& model, const torch::Tensor& x0, VarianceType v,
                             const std::vector<KlStratum>& strata, const NoiseFn& noise, bool clip = true);

}  // namespace ddpm
