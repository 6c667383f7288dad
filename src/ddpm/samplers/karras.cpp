// karras.cpp — see karras.h.
#include "ddpm/samplers/karras.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

std::vector<double> karras_sigmas(int64_t n, double sigma_min, double sigma_max, double rho) {
  if (n < 1) throw std::runtime_error("sampling steps must be at least 1, got " + std::to_string(n));
  if (!(sigma_min > 0 && sigma_max >= sigma_min && rho > 0))
    throw std::runtime_error("Karras schedule needs 0 < sigma_min <= sigma_max and rho > 0");
  std::vector<double> s;
  const double lo = std::pow(sigma_min, 1.0 / rho), hi = std::pow(sigma_max, 1.0 / rho);
  for (int64_t i = 0; i < n; ++i) {
    const double r = n == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n - 1);
    s.push_back(std::pow(hi + r * (lo - hi), rho));
  }
  s.push_back(0.0);
  return s;
}

std::vector<double> karras_sigmas(const Schedule& schedule, int64_t n, double rho) {
  return karras_sigmas(n, schedule.sigma(0), schedule.sigma(schedule.T - 1), rho);
}

SigmaPath sigma_path(const Schedule& schedule, Spacing spacing, int64_t steps, double rho) {
  const auto grid = time_grid(spacing, schedule, steps, rho);  // ascending
  SigmaPath p;
  for (auto it = grid.rbegin(); it != grid.rend(); ++it) {
    const double a = alpha_bar_of(schedule, *it);
    p.t.push_back(*it);
    p.sigma.push_back(std::sqrt((1.0 - a) / a));
  }
  p.sigma.push_back(0.0);
  return p;
}

Denoised denoise_sigma(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_hat, double t,
                       bool clip) {
  const double a = alpha_bar_of(schedule, t);  // ᾱ = 1/(1 + σ²)
  // The VP input x_t = √ᾱ x̂. x̂_0 is the same in both views, and dx̂/dσ = (x̂ − x̂_0)/σ = ε̂ (with the clipped
  // x̂_0 when clipping, since denoise() then recomputes ε̂ from it).
  return denoise(model, x_hat * std::sqrt(a), schedule, t, clip);
}

}  // namespace ddpm
