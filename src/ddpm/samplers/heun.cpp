// heun.cpp — see heun.h. EDM Algorithm 1: d_i = ε̂(x̂_i; σ_i); x̂' = x̂_i + (σ_{i+1} − σ_i) d_i; if σ_{i+1} ≠ 0:
// d' = ε̂(x̂'; σ_{i+1}) and x̂_{i+1} = x̂_i + (σ_{i+1} − σ_i)(d_i + d')/2 (lines 4–8).
#include "ddpm/samplers/heun.h"

#include <cmath>

namespace ddpm {

torch::Tensor heun_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const KarrasOptions& opts) {
  const auto path = sigma_path(schedule, opts.spacing, opts.steps, opts.rho);
  const auto& sig = path.sigma;
  const auto N = static_cast<int64_t>(path.t.size());
  auto x = x_T * std::sqrt(1.0 + sig[0] * sig[0]);  // x̂ = x_T/√ᾱ at the first time  [B,C,H,W]
  for (int64_t i = 0; i < N; ++i) {
    const double dt = sig[i + 1] - sig[i];
    const auto d = denoise_sigma(schedule, model, x, path.t[i], opts.clip_x0);
    if (sig[i + 1] == 0.0) {
      x = d.x0;  // Euler to σ = 0 is x̂_0
    } else {
      auto x_next = x + dt * d.eps;
      const auto d2 = denoise_sigma(schedule, model, x_next, path.t[i + 1], opts.clip_x0);
      x = x + (0.5 * dt) * (d.eps + d2.eps);
    }
    if (opts.on_step) opts.on_step(i + 1, N);
  }
  return x;
}

}  // namespace ddpm
