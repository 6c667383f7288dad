// replace.cpp — see replace.h. Notation: τ_1 < … < τ_S the visited timesteps, a = ᾱ_{τ_i}, a' = ᾱ_{τ_{i−1}} (1
// after the last step).
#include "ddpm/restoration/replace.h"

#include "ddpm/restoration/known_region.h"
#include "ddpm/samplers/ddpm_sampler.h"

namespace ddpm {

torch::Tensor reverse_chain(const Schedule& schedule, const EpsModel& model, torch::Tensor x,
                            const std::vector<double>& grid, VarianceType variance, bool clip_x0,
                            const torch::Tensor& keep, const torch::Tensor& known, const NoiseFn& noise,
                            const StepCallback& on_step) {
  const auto S = static_cast<int64_t>(grid.size());
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a = alpha_bar_of(schedule, grid[i]), a_prev = i > 0 ? alpha_bar_of(schedule, grid[i - 1]) : 1.0;
    const auto x0 = denoise(model, x, schedule, grid[i], clip_x0).x0;  // eq. 15
    x = ddpm_step(x, x0, a, a_prev, variance, noise);                  // [B,C,H,W]
    if (keep.defined()) x = paste_known(keep, noised_to(known, a_prev, noise), x);
    if (on_step) on_step(S - i, S);
  }
  return x;
}

torch::Tensor replace_inpaint(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                              const torch::Tensor& y, const torch::Tensor& keep, const NoiseFn& noise,
                              const ReplaceOptions& opts) {
  TORCH_CHECK(y.sizes() == x_T.sizes(), "replace: the image and x_T differ in shape");
  check_keep_mask(keep, x_T, "replace: mask");
  return reverse_chain(schedule, model, x_T, time_grid(Spacing::Uniform, schedule, opts.steps), opts.variance,
                       opts.clip_x0, keep, y.to(x_T.device(), x_T.scalar_type()), noise, opts.on_step);
}

}  // namespace ddpm
