// ddnm.cpp — see ddnm.h. Notation: a = ᾱ_{τ_i}, a' = ᾱ_{τ_{i−1}} (1 after the last step).
#include "ddpm/restoration/ddnm.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

torch::Tensor ddnm_restore(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                           const LinearOperator& op, const torch::Tensor& y, const NoiseFn& noise,
                           const DDNMOptions& opts) {
  if (!(opts.eta >= 0.0 && opts.eta <= 1.0)) throw std::runtime_error("ddnm: eta must be in [0, 1], got " + std::to_string(opts.eta));
  if (!(opts.sigma_y >= 0.0)) throw std::runtime_error("ddnm: sigma_y must be >= 0");
  TORCH_CHECK(op.apply(x_T).sizes() == y.sizes(), "ddnm: y does not have the operator's observation shape");
  const auto ts = time_grid(Spacing::Uniform, schedule, opts.steps);
  const auto S = static_cast<int64_t>(ts.size());
  const auto yy = y.to(x_T.device(), x_T.scalar_type());
  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a_prev = i > 0 ? alpha_bar_of(schedule, ts[i - 1]) : 1.0;
    const auto d = denoise(model, x, schedule, ts[i], opts.clip_x0);                 // ε̂, x̂_0
    const double c = std::sqrt(1.0 - a_prev) * opts.eta;                             // noise std of the step
    double lambda = 1.0, z_std = c;
    if (opts.sigma_y > 0) {                                                          // DDNM+ (eq. 19)
      const double carried = std::sqrt(a_prev) * opts.sigma_y;
      if (c >= carried) {
        z_std = std::sqrt(c * c - carried * carried);
      } else {
        lambda = c / carried;
        z_std = 0.0;
      }
    }
    auto x0 = d.x0 - lambda * op.pinv(op.apply(d.x0) - yy);                          // eq. 13 / 17
    x = std::sqrt(a_prev) * x0 + std::sqrt(1.0 - a_prev) * std::sqrt(1.0 - opts.eta * opts.eta) * d.eps;
    if (z_std > 0) x = x + z_std * noise(x.sizes()).to(x.device(), x.scalar_type());
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

}  // namespace ddpm
