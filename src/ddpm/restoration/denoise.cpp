// denoise.cpp — see denoise.h.
#include "ddpm/restoration/denoise.h"

#include "ddpm/restoration/replace.h"
#include "ddpm/restoration/sdedit.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

int64_t denoise_start(const Schedule& schedule, double sigma_model) {
  if (!(sigma_model > 0.0)) throw std::runtime_error("noise sigma must be > 0, got " + std::to_string(sigma_model));
  const auto* ab = schedule.alphas_cumprod.data_ptr<double>();
  for (int64_t t = 0; t < schedule.T; ++t)
    if (std::sqrt((1.0 - ab[t]) / ab[t]) >= sigma_model) return t;
  throw std::runtime_error("noise sigma " + std::to_string(sigma_model) +
                           " (model units) is noisier than the schedule's largest noise, sigma_t/sqrt(abar_t) = " +
                           std::to_string(std::sqrt((1.0 - ab[schedule.T - 1]) / ab[schedule.T - 1])));
}

torch::Tensor denoise_known_sigma(const Schedule& schedule, const EpsModel& model, const torch::Tensor& y,
                                  double sigma_model, const NoiseFn& noise, const DenoiseOptions& opts) {
  const int64_t ts = denoise_start(schedule, sigma_model);
  const double a = alpha_bar_of(schedule, static_cast<double>(ts));
  const double top_up = std::sqrt(std::max(1.0 - a - a * sigma_model * sigma_model, 0.0));
  auto x = std::sqrt(a) * y + top_up * noise(y.sizes()).to(y.device(), y.scalar_type());  // ~ q(x_{t*} | x_0)
  return reverse_chain(schedule, model, x, grid_from(ts, opts.steps), opts.variance, opts.clip_x0, {}, {}, noise,
                       opts.on_step);
}

}  // namespace ddpm
