// schedule.h — the fixed forward process of DDPM: β schedules, ᾱ, q(x_t | x_0), the posterior
// q(x_{t-1} | x_t, x_0) and x_0 from (x_t, ε). Pure math; no network, no sampling loop.
//
// Notation (Ho, Jain, Abbeel 2020; Nichol & Dhariwal 2021). Index t runs 0..T-1 in code and stands for the
// paper's t = 1..T.
//   β_t                 betas                   noise added at step t
//   α_t = 1 − β_t       alphas
//   ᾱ_t = ∏_{s≤t} α_s   alphas_cumprod          ᾱ_{-1} := 1 (alphas_cumprod_prev[0])
//   β̃_t                 posterior_variance      (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t   (eq. 7)
// All coefficient tables are float64 [T] on the CPU; extract() gathers and casts them to the input's dtype and
// device. Size legend: B batch, C channels, H×W image.
#pragma once

#include <torch/torch.h>

#include <string>

namespace ddpm {

enum class BetaSchedule { Linear, Cosine };
enum class VarianceType { FixedSmall, FixedLarge };  // β̃_t or β_t as the reverse-step variance

BetaSchedule parse_beta_schedule(const std::string& name);  // "linear" | "cosine"; throws otherwise
std::string to_string(BetaSchedule s);
VarianceType parse_variance_type(const std::string& name);  // "fixed_small" | "fixed_large"
std::string to_string(VarianceType v);

// β_t for the named schedule, float64 [T].
torch::Tensor make_betas(BetaSchedule kind, int64_t T);

// coef[t] reshaped to broadcast against `like`: [B] -> [B, 1, 1, 1], in like's dtype and device.
torch::Tensor extract(const torch::Tensor& coef, const torch::Tensor& t, const torch::Tensor& like);

struct Schedule {
  Schedule(BetaSchedule kind = BetaSchedule::Linear, int64_t T = 1000);

  BetaSchedule kind;
  int64_t T;
  torch::Tensor betas;                        // [T] f64
  torch::Tensor alphas;                       // [T]
  torch::Tensor alphas_cumprod;               // [T]  ᾱ_t
  torch::Tensor alphas_cumprod_prev;          // [T]  ᾱ_{t−1}, with ᾱ_{−1} = 1
  torch::Tensor sqrt_alphas_cumprod;          // [T]
  torch::Tensor sqrt_one_minus_alphas_cumprod;// [T]
  torch::Tensor sqrt_recip_alphas_cumprod;    // [T]  1/√ᾱ_t
  torch::Tensor sqrt_recipm1_alphas_cumprod;  // [T]  √(1/ᾱ_t − 1)
  torch::Tensor posterior_variance;           // [T]  β̃_t
  torch::Tensor posterior_log_variance_clipped; // [T] log β̃_t with β̃_0 replaced by β̃_1 (it is 0)
  torch::Tensor posterior_mean_coef1;         // [T]  β_t √ᾱ_{t−1} / (1 − ᾱ_t)   (eq. 7, x_0 term)
  torch::Tensor posterior_mean_coef2;         // [T]  (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t) (eq. 7, x_t term)

  // x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε  (eq. 4).           x0, eps: [B, C, H, W]; t: [B] int64
  torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& eps) const;
  // x_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t   (eq. 4 solved for x_0; eq. 15)
  torch::Tensor predict_x0_from_eps(const torch::Tensor& x_t, const torch::Tensor& t,
                                    const torch::Tensor& eps) const;
  // Mean of q(x_{t−1} | x_t, x_0) (eq. 7). Its variance is posterior_variance[t].
  torch::Tensor q_posterior_mean(const torch::Tensor& x0, const torch::Tensor& x_t, const torch::Tensor& t) const;

  // Continuous time, for samplers that work in σ (Karras et al. 2022, §2 and App. C.2 "VP"): the VP noise level
  // σ_t = √((1 − ᾱ_t)/ᾱ_t), so x_t / √ᾱ_t = x_0 + σ_t ε. Between the integer timesteps, log σ is interpolated
  // linearly in t (as k-diffusion's discrete-schedule wrappers do); at integers everything equals the table.
  double sigma(int64_t t) const;                  // σ_t at an integer timestep
  double t_for_sigma(double sigma) const;         // fractional t in [0, T−1] with σ_t = σ (clamped to the range)
  double alpha_bar_at(double t) const;            // ᾱ at a fractional t = 1 / (1 + σ_t²)
  // ᾱ at the timesteps t [B] (int64: table lookup; floating: the interpolation above), as [B,1,1,1] in like's
  // dtype and device.
  torch::Tensor alpha_bar(const torch::Tensor& t, const torch::Tensor& like) const;
  torch::Tensor log_sigmas;                       // [T] f64, log σ_t (increasing in t)
};

}  // namespace ddpm
