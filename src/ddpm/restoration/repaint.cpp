// repaint.cpp — see repaint.h. Level k ≥ 1 is the visited timestep τ_k of the respaced chain (ᾱ_k = ᾱ_{τ_k}),
// level 0 is the clean image (ᾱ_0 = 1).
#include "ddpm/restoration/repaint.h"

#include "ddpm/restoration/known_region.h"
#include "ddpm/samplers/ddpm_sampler.h"

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace ddpm {

std::vector<int64_t> repaint_levels(int64_t steps, int64_t jump_length, int64_t resample) {
  if (steps < 1) throw std::runtime_error("repaint: steps must be >= 1, got " + std::to_string(steps));
  if (jump_length < 1) throw std::runtime_error("repaint: jump length must be >= 1, got " + std::to_string(jump_length));
  if (resample < 1) throw std::runtime_error("repaint: resamplings must be >= 1, got " + std::to_string(resample));
  // The official get_schedule_jump in levels (its timestep index j is level j + 1): jump points j = 0, L, 2L, …
  // below S − L, each with R − 1 jumps left.
  std::map<int64_t, int64_t> jumps;
  for (int64_t j = 0; j < steps - jump_length; j += jump_length) jumps[j] = resample - 1;
  std::vector<int64_t> levels;
  int64_t t = steps;  // the official loop's index; the state it holds is level t + 1
  while (t >= 1) {
    --t;
    levels.push_back(t + 1);
    auto it = jumps.find(t);
    if (it != jumps.end() && it->second > 0) {
      --it->second;
      for (int64_t k = 0; k < jump_length; ++k) levels.push_back(++t + 1);
    }
  }
  levels.push_back(0);  // index −1: the clean image
  return levels;
}

namespace {
int64_t reverse_steps(const std::vector<int64_t>& levels) {  // the decreases: one model call each
  int64_t n = 0;
  for (size_t i = 1; i < levels.size(); ++i) n += levels[i] < levels[i - 1];
  return n;
}
}  // namespace

int64_t repaint_nfe(int64_t steps, int64_t jump_length, int64_t resample) {
  return reverse_steps(repaint_levels(steps, jump_length, resample));
}

torch::Tensor repaint_inpaint(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                              const torch::Tensor& y, const torch::Tensor& keep, const NoiseFn& noise,
                              const RePaintOptions& opts) {
  TORCH_CHECK(y.sizes() == x_T.sizes(), "repaint: the image and x_T differ in shape");
  check_keep_mask(keep, x_T, "repaint: mask");
  const auto ts = time_grid(Spacing::Uniform, schedule, opts.steps);
  const auto levels = repaint_levels(static_cast<int64_t>(ts.size()), opts.jump_length, opts.resample);
  auto abar = [&](int64_t k) { return k == 0 ? 1.0 : alpha_bar_of(schedule, ts[static_cast<size_t>(k - 1)]); };
  const int64_t total = reverse_steps(levels);
  int64_t done = 0;
  auto x = x_T;  // [B,C,H,W], at level S
  for (size_t i = 1; i < levels.size(); ++i) {
    const int64_t from = levels[i - 1], to = levels[i];
    const double a_from = abar(from), a_to = abar(to);
    if (to < from) {  // reverse step: the model's DDPM step for the unknown part, the noised known part pasted
      const auto x0 = denoise(model, x, schedule, ts[static_cast<size_t>(from - 1)], opts.clip_x0).x0;  // eq. 15
      auto unknown = ddpm_step(x, x0, a_from, a_to, opts.variance, noise);
      x = paste_known(keep, noised_to(y, a_to, noise), unknown);
      if (opts.on_step) opts.on_step(++done, total);
    } else {          // forward step q(x_to | x_from) = N(√(ᾱ_to/ᾱ_from) x, (1 − ᾱ_to/ᾱ_from) I)
      const double alpha = a_to / a_from;
      auto z = noise(x.sizes()).to(x.device(), x.scalar_type());
      x = std::sqrt(alpha) * x + std::sqrt(1.0 - alpha) * z;
    }
  }
  return x;
}

}  // namespace ddpm
