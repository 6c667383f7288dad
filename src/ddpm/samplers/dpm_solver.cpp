// dpm_solver.cpp — see dpm_solver.h. Notation (VP): α = √ᾱ, σ = √(1 − ᾱ), λ = log(α/σ); s the current time,
// t the next, h = λ_t − λ_s > 0; m0, m1, m2 the x̂_0 at s and at the two previous times.
// The exact solution (paper eq. 8): x_t = (σ_t/σ_s) x_s + σ_t ∫_{λ_s}^{λ_t} e^λ x̂_0(λ) dλ; expanding x̂_0 in λ
// gives the weights −α_t φ1, α_t φ2, −α_t φ3 with φ1 = e^{−h} − 1, φ2 = φ1/h + 1, φ3 = φ2/h − 1/2.
#include "ddpm/samplers/dpm_solver.h"

#include <cmath>
#include <deque>
#include <stdexcept>
#include <string>

namespace ddpm {

torch::Tensor dpm_solver_pp_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                                   const DPMSolverOptions& opts) {
  if (opts.order < 1 || opts.order > 3)
    throw std::runtime_error("DPM-Solver++ order must be 1, 2 or 3, got " + std::to_string(opts.order));
  const auto ts = time_grid(opts.spacing, schedule, opts.steps);
  const auto S = static_cast<int64_t>(ts.size());
  auto lambda = [](double a) { return 0.5 * std::log(a / (1.0 - a)); };

  std::deque<torch::Tensor> m;  // x̂_0 history, newest first
  std::deque<double> lam;       // λ of each, newest first
  auto x = x_T;                 // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a_s = alpha_bar_of(schedule, ts[i]);
    m.push_front(denoise(model, x, schedule, ts[i], opts.clip_x0).x0);
    lam.push_front(lambda(a_s));
    if (m.size() > 3) m.pop_back(), lam.pop_back();

    if (i == 0) {
      x = m[0];  // σ_t = 0, α_t = 1: the first-order update is x̂_0 itself
    } else {
      const double a_t = alpha_bar_of(schedule, ts[i - 1]);
      const double al_t = std::sqrt(a_t), sg_t = std::sqrt(1.0 - a_t), sg_s = std::sqrt(1.0 - a_s);
      const double h = lambda(a_t) - lam[0];
      const double phi1 = std::expm1(-h);
      int order = std::min<int>(opts.order, static_cast<int>(m.size()));
      if (i == 1) order = std::min(order, 2);  // lower order before the final jump to σ = 0
      x = (sg_t / sg_s) * x - (al_t * phi1) * m[0];                                      // DPM-Solver++(1)
      if (order == 2) {
        const double r = (lam[0] - lam[1]) / h;                                          // r_i = h_{i−1}/h_i
        // Algorithm 2: D = (1 + 1/(2r)) m0 − 1/(2r) m1, i.e. the correction −α_t φ1 (m0 − m1)/(2r)
        x = x - (al_t * phi1 / (2.0 * r)) * (m[0] - m[1]);
      } else if (order == 3) {
        const double r0 = (lam[0] - lam[1]) / h, r1 = (lam[1] - lam[2]) / h;
        const auto d1_0 = (m[0] - m[1]) / r0, d1_1 = (m[1] - m[2]) / r1;                // ≈ h·x̂_0'
        const auto d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1);                         // ≈ h·x̂_0'
        const auto d2 = (d1_0 - d1_1) / (r0 + r1);                                       // ≈ h²·x̂_0''/2
        const double phi2 = phi1 / h + 1.0, phi3 = phi2 / h - 0.5;
        x = x + (al_t * phi2) * d1 - (al_t * phi3) * d2;
      }
    }
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

}  // namespace ddpm
