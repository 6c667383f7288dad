// ddim.cpp — see ddim.h. Notation: τ_1 < … < τ_S the visited timesteps, a = ᾱ_{τ_i}, a' = ᾱ_{τ_{i−1}} (1 after
// the last step).
#include "ddpm/samplers/ddim.h"

#include <cmath>

namespace ddpm {

torch::Tensor ddim_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const DDIMOptions& opts) {
  const auto ts = time_grid(opts.spacing, schedule, opts.steps);
  const auto S = static_cast<int64_t>(ts.size());
  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a = alpha_bar_of(schedule, ts[i]), a_prev = i > 0 ? alpha_bar_of(schedule, ts[i - 1]) : 1.0;
    const auto d = denoise(model, x, schedule, ts[i], opts.clip_x0);                       // ε̂, x̂_0
    // eq. 16: σ(η)² = η² (1 − a')/(1 − a) · (1 − a/a')
    const double var = opts.eta * opts.eta * (1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev);
    // eq. 12: x' = √a' x̂_0 + √(1 − a' − σ²) ε̂ + σ z
    x = std::sqrt(a_prev) * d.x0 + std::sqrt(std::max(1.0 - a_prev - var, 0.0)) * d.eps;
    if (var > 0) x = x + std::sqrt(var) * noise(x.sizes()).to(x.device(), x.scalar_type());
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

torch::Tensor ddim_invert(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x0, int64_t steps,
                          Spacing spacing, const StepCallback& on_step) {
  const auto ts = time_grid(spacing, schedule, steps);
  const auto S = static_cast<int64_t>(ts.size());
  auto x = x0;  // [B,C,H,W], at ᾱ = 1
  double a = 1.0;
  for (int64_t i = 0; i < S; ++i) {
    const double t_eval = i > 0 ? ts[i - 1] : ts[0];
    const double a_next = alpha_bar_of(schedule, ts[i]);
    // ε̂ at the step's start (no clipping: the inverse of an unclipped η = 0 sample)
    auto eps = denoise(model, x, schedule, t_eval, false).eps;
    if (i == 0) {
      x = std::sqrt(a_next) * x + std::sqrt(1.0 - a_next) * eps;                          // x̂_0 = x at ᾱ = 1
    } else {
      auto x0_hat = (x - std::sqrt(1.0 - a) * eps) / std::sqrt(a);                        // eq. 15
      x = std::sqrt(a_next) * x0_hat + std::sqrt(1.0 - a_next) * eps;                     // eq. 12, η = 0, forwards
    }
    a = a_next;
    if (on_step) on_step(i + 1, S);
  }
  return x;
}

}  // namespace ddpm
