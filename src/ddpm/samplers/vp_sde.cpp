// vp_sde.cpp — see vp_sde.h. Notation: τ_S > … > τ_1 the visited times, a = ᾱ_{τ_i}, a' = ᾱ_{τ_{i−1}},
// b = 1 − a/a' (β(t)Δt of the step), s = −ε̂/√(1 − a) the score.
#include "ddpm/samplers/vp_sde.h"

#include <cmath>

namespace ddpm {

torch::Tensor vp_sde_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                            const NoiseFn& noise, const VPSDEOptions& opts) {
  const auto ts = time_grid(opts.spacing, schedule, opts.steps == 0 ? schedule.T : opts.steps);  // ascending
  const auto S = static_cast<int64_t>(ts.size());
  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a = alpha_bar_of(schedule, ts[i]);
    const auto d = denoise(model, x, schedule, ts[i], opts.clip_x0);  // ε̂, x̂_0 (eq. 15)  [B,C,H,W]
    if (i == 0) {
      x = d.x0;  // the last step lands on ᾱ = 1: x̂_0
    } else {
      const double b = 1.0 - a / alpha_bar_of(schedule, ts[i - 1]);  // β(t)Δt over [τ_{i−1}, τ_i]
      // eq. 6, Euler–Maruyama backwards in time: x ← x − [f − g² s] Δt + g √Δt z with f = −½βx, g² = β,
      // s = −ε̂/√(1 − a)
      auto z = noise(x.sizes()).to(x.device(), x.scalar_type());  // [B,C,H,W]
      x = (1.0 + 0.5 * b) * x - (b / std::sqrt(1.0 - a)) * d.eps + std::sqrt(b) * z;
    }
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

}  // namespace ddpm
