// edm_sde.cpp — see edm_sde.h. EDM Algorithm 2, line by line, in the σ-space view of karras.h. Each step's
// arithmetic is written exactly as heun.cpp writes it, so that with γ_i = 0 (no churn) the two agree bit for bit.
#include "ddpm/samplers/edm_sde.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

void check_edm_sde_options(const EDMSDEOptions& o) {
  if (!(o.s_churn >= 0)) throw std::runtime_error("--s-churn must be >= 0, got " + std::to_string(o.s_churn));
  if (!(o.s_noise >= 0)) throw std::runtime_error("--s-noise must be >= 0, got " + std::to_string(o.s_noise));
  if (!(o.s_tmin >= 0)) throw std::runtime_error("--s-tmin must be >= 0, got " + std::to_string(o.s_tmin));
  if (!(o.s_tmax >= o.s_tmin))
    throw std::runtime_error("--s-tmax (" + std::to_string(o.s_tmax) + ") must be >= --s-tmin (" +
                             std::to_string(o.s_tmin) + ")");
}

torch::Tensor edm_sde_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                             const NoiseFn& noise, const EDMSDEOptions& opts) {
  check_edm_sde_options(opts);
  const auto path = sigma_path(schedule, opts.spacing, opts.steps, opts.rho);
  const auto& sig = path.sigma;
  const auto N = static_cast<int64_t>(path.t.size());
  // σ_{T−1}, computed as sigma_path computes it, so that a grid starting at T−1 is not "churned" by one ulp.
  const double a_max = alpha_bar_of(schedule, static_cast<double>(schedule.T - 1));
  const double sigma_max = std::sqrt((1.0 - a_max) / a_max);
  const double gamma_churn = std::min(opts.s_churn / static_cast<double>(N), std::sqrt(2.0) - 1.0);  // line 3
  auto x = x_T * std::sqrt(1.0 + sig[0] * sig[0]);  // x̂ = x_T/√ᾱ at the first time (line 1)  [B,C,H,W]
  for (int64_t i = 0; i < N; ++i) {
    const double gamma = (sig[i] >= opts.s_tmin && sig[i] <= opts.s_tmax) ? gamma_churn : 0.0;
    double sig_hat = sig[i], t_hat = path.t[i];
    // Lines 4–6: raise the noise level to σ̂ = (1 + γ) σ. Not beyond σ_{T−1}: above it t(σ) would clamp and the
    // model would be asked about a noise level it never saw (so the first step, at σ_{T−1}, is never churned).
    if (gamma > 0.0 && std::min(sig[i] * (1.0 + gamma), sigma_max) > sig[i]) {
      sig_hat = std::min(sig[i] * (1.0 + gamma), sigma_max);
      t_hat = schedule.t_for_sigma(sig_hat);
      const double sd = opts.s_noise * std::sqrt(sig_hat * sig_hat - sig[i] * sig[i]);
      x = x + sd * noise(x.sizes()).to(x.device(), x.scalar_type());  // x̂_i  [B,C,H,W]
    }
    const double dt = sig[i + 1] - sig_hat;
    const auto d = denoise_sigma(schedule, model, x, t_hat, opts.clip_x0);  // d_i = ε̂(x̂_i; σ̂_i) (line 7)
    if (sig[i + 1] == 0.0) {
      x = d.x0;  // Euler to σ = 0 is x̂_0 (line 8, no correction: line 9 fails)
    } else {
      auto x_next = x + dt * d.eps;                                                     // line 8
      const auto d2 = denoise_sigma(schedule, model, x_next, path.t[i + 1], opts.clip_x0);  // line 10
      x = x + (0.5 * dt) * (d.eps + d2.eps);                                            // line 11
    }
    if (opts.on_step) opts.on_step(i + 1, N);
  }
  return x;
}

}  // namespace ddpm
