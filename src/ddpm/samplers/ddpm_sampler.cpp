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
  const auto ts = respaced_timesteps(schedule.T, opts.steps == 0 ? schedule.T : opts.steps);
  const auto S = static_cast<int64_t>(ts.size());
  const auto* ac = schedule.alphas_cumprod.data_ptr<double>();  // f64 [T], CPU
  const int64_t B = x_T.size(0);

  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a_t = ac[ts[i]];
    const double a_prev = i > 0 ? ac[ts[i - 1]] : 1.0;
    const double beta = 1.0 - a_t / a_prev;
    const auto t = torch::full({B}, ts[i], torch::TensorOptions().dtype(torch::kLong).device(x.device()));  // [B]

    auto eps = model(x, t);                                                            // [B,C,H,W]
    auto x0 = (x - std::sqrt(1.0 - a_t) * eps) / std::sqrt(a_t);                       // eq. 15
    if (opts.clip_x0) x0 = x0.clamp(-1.0, 1.0);
    const double coef1 = beta * std::sqrt(a_prev) / (1.0 - a_t);                       // eq. 7
    const double coef2 = (1.0 - a_prev) * std::sqrt(1.0 - beta) / (1.0 - a_t);         // eq. 7
    auto mean = coef1 * x0 + coef2 * x;                                                // μ̃(x_t, x̂_0)
    if (i > 0) {
      // σ²: fixed_small = β̃ = β (1 − ᾱ_{t−1}) / (1 − ᾱ_t); fixed_large = β (Algorithm 2 uses σ² = β_t).
      const double var = opts.variance == VarianceType::FixedSmall ? beta * (1.0 - a_prev) / (1.0 - a_t) : beta;
      auto z = noise(x.sizes()).to(x.device(), x.scalar_type());                       // [B,C,H,W]
      x = mean + std::sqrt(var) * z;                                                   // Algorithm 2, line 4
    } else {
      x = mean;                                                                        // no noise on the last step
    }
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

}  // namespace ddpm
