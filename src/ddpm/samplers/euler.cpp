// euler.cpp — see euler.h. x̂_{i+1} = x̂_i + (σ_{i+1} − σ_i) ε̂(x̂_i; σ_i)   (EDM Algorithm 1, lines 4–5).
#include "ddpm/samplers/euler.h"

#include <cmath>

namespace ddpm {

torch::Tensor euler_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                           const KarrasOptions& opts) {
  const auto path = sigma_path(schedule, opts.spacing, opts.steps, opts.rho);
  const auto& sig = path.sigma;
  const auto N = static_cast<int64_t>(path.t.size());
  auto x = x_T * std::sqrt(1.0 + sig[0] * sig[0]);  // x̂ = x_T/√ᾱ at the first time  [B,C,H,W]
  for (int64_t i = 0; i < N; ++i) {
    const auto d = denoise_sigma(schedule, model, x, path.t[i], opts.clip_x0);
    x = sig[i + 1] == 0.0 ? d.x0 : x + (sig[i + 1] - sig[i]) * d.eps;  // at σ = 0 the step is exactly x̂_0
    if (opts.on_step) opts.on_step(i + 1, N);
  }
  return x;
}

}  // namespace ddpm
