// sdedit.cpp — see sdedit.h.
#include "ddpm/restoration/sdedit.h"

#include "ddpm/restoration/known_region.h"
#include "ddpm/restoration/replace.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

int64_t sdedit_start(double strength, int64_t T) {
  if (!(strength > 0.0 && strength <= 1.0))
    throw std::runtime_error("strength must be in (0, 1], got " + std::to_string(strength));
  const auto t0 = static_cast<int64_t>(std::ceil(strength * static_cast<double>(T) - 1e-9)) - 1;
  return std::clamp<int64_t>(t0, 0, T - 1);
}

int64_t sdedit_steps(double strength, int64_t steps) {
  return steps > 0 ? steps : std::max<int64_t>(1, std::llround(strength * 100));
}

std::vector<double> grid_from(int64_t t0, int64_t steps) {
  std::vector<double> g;
  for (auto t : respaced_timesteps(t0 + 1, std::clamp<int64_t>(steps, 1, t0 + 1))) g.push_back(static_cast<double>(t));
  return g;
}

torch::Tensor sdedit(const Schedule& schedule, const EpsModel& model, const torch::Tensor& guide,
                     const NoiseFn& noise, const SDEditOptions& opts) {
  const int64_t t0 = sdedit_start(opts.strength, schedule.T);
  if (opts.keep.defined()) check_keep_mask(opts.keep, guide, "sdedit: mask");
  const auto grid = grid_from(t0, sdedit_steps(opts.strength, opts.steps));
  const double a0 = alpha_bar_of(schedule, static_cast<double>(t0));
  auto x = noised_to(guide, a0, noise);  // x_{t_0} ~ q(x_{t_0} | x_guide)  [B,C,H,W]
  return reverse_chain(schedule, model, x, grid, opts.variance, opts.clip_x0, opts.keep, guide, noise, opts.on_step);
}

}  // namespace ddpm
