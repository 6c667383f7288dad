// ddpm_sampler.cpp — Algorithm 2 of Ho et al. 2020 on a (possibly respaced) timestep sequence τ_1 < … < τ_S.
//
// Notation: ᾱ_i = ᾱ_{τ_i}, ᾱ_{i−1} = ᾱ_{τ_{i−1}} (1 for i = 1), β_i = 1 − ᾱ_i / ᾱ_{i−1}, α_i = 1 − β_i.
// With S = T this is exactly the paper's chain.
#include "ddpm/samplers/ddpm_sampler.h"

#include <cmath>
#include <stdexcept>

namespace ddpm {

torch::Tensor ddpm_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const DDPMSamplerOptions& opts) {
  const auto ts = time_grid(opts.spacing, schedule, opts.steps == 0 ? schedule.T : opts.steps);
  const auto S = static_cast<int64_t>(ts.size());

  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a_t = alpha_bar_of(schedule, ts[i]);
    const double a_prev = i > 0 ? alpha_bar_of(schedule, ts[i - 1]) : 1.0;
    const auto x0 = denoise(model, x, schedule, ts[i], opts.clip_x0).x0;                   // eq. 15 [B,C,H,W]
    x = ddpm_step(x, x0, a_t, a_prev, opts.variance, noise);
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

torch::Tensor ddpm_step(const torch::Tensor& x, const torch::Tensor& x0, double a_t, double a_prev,
                        VarianceType variance, const NoiseFn& noise) {
  const double beta = 1.0 - a_t / a_prev;
  const double coef1 = beta * std::sqrt(a_prev) / (1.0 - a_t);                         // eq. 7
  const double coef2 = (1.0 - a_prev) * std::sqrt(1.0 - beta) / (1.0 - a_t);           // eq. 7
  auto mean = coef1 * x0 + coef2 * x;                                                  // μ̃(x_t, x̂_0)
  if (a_prev >= 1.0) return mean;                                                      // no noise on the last step
  // σ²: fixed_small = β̃ = β (1 − ᾱ_{t−1}) / (1 − ᾱ_t); fixed_large = β (Algorithm 2 uses σ² = β_t).
  const double var = variance == VarianceType::FixedSmall ? beta * (1.0 - a_prev) / (1.0 - a_t) : beta;
  auto z = noise(x.sizes()).to(x.device(), x.scalar_type());                           // [B,C,H,W]
  return mean + std::sqrt(var) * z;                                                    // Algorithm 2, line 4
}

}  // namespace ddpm
