// ilvr.cpp — see ilvr.h. Notation: a = ᾱ_{τ_i}, a' = ᾱ_{τ_{i−1}} (1 after the last step).
#include "ddpm/restoration/ilvr.h"

#include "ddpm/restoration/known_region.h"
#include "ddpm/samplers/ddpm_sampler.h"

namespace ddpm {

torch::Tensor ilvr_restore(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                           const LinearOperator& op, const torch::Tensor& y, const NoiseFn& noise,
                           const ILVROptions& opts) {
  TORCH_CHECK(op.apply(x_T).sizes() == y.sizes(), "ilvr: y does not have the operator's observation shape");
  const auto ts = time_grid(Spacing::Uniform, schedule, opts.steps);
  const auto S = static_cast<int64_t>(ts.size());
  const auto ref = op.pinv(y.to(x_T.device(), x_T.scalar_type()));  // A†y [B,C,H,W]
  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a = alpha_bar_of(schedule, ts[i]), a_prev = i > 0 ? alpha_bar_of(schedule, ts[i - 1]) : 1.0;
    const auto x0 = denoise(model, x, schedule, ts[i], opts.clip_x0).x0;              // eq. 15
    auto proposal = ddpm_step(x, x0, a, a_prev, opts.variance, noise);                // x' ~ p_θ(x_{t−1} | x_t)
    x = proposal - op.project(proposal) + op.project(noised_to(ref, a_prev, noise));  // Alg. 1, line 5
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

}  // namespace ddpm
