// replace.h — inpainting by replacement (the baseline of Lugmayr et al. 2022, "RePaint", §4 and Alg. 1 with one
// resampling; Song et al. 2021 "Score-based generative modeling", App. I.2): every reverse step draws the unknown
// pixels from the model's DDPM step and pastes the known pixels noised to the same level,
//   x_{t−1} = m ⊙ (√ᾱ_{t−1} y + √(1−ᾱ_{t−1}) z) + (1 − m) ⊙ x^u_{t−1},   x^u_{t−1} ~ p_θ(x_{t−1} | x_t).
// The last step lands on ᾱ = 1, so the known pixels come back exactly. Not here: resampling (repaint.h).
// Notation: m the keep mask (1 = known), y the image (its missing pixels are ignored), images in [−1, 1].
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <vector>

namespace ddpm {

struct ReplaceOptions {
  int64_t steps = 100;                              // reverse steps (= NFE), respaced uniformly over 0..T−1
  VarianceType variance = VarianceType::FixedSmall;
  bool clip_x0 = true;
  StepCallback on_step;
};

// x_T [B,C,H,W] standard normal, y [B,C,H,W], keep [1|B, 1|C, H, W] 0/1 -> x_0 [B,C,H,W]. Per step, `noise` is
// drawn first for the unknown part (not on the last step), then for the known part (not on the last step).
torch::Tensor replace_inpaint(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                              const torch::Tensor& y, const torch::Tensor& keep, const NoiseFn& noise,
                              const ReplaceOptions& opts = {});

// The DDPM reverse chain over a grid (ascending timesteps) from x at its top (replacement on the full grid, and
// SDEdit and the known-σ denoiser from their t_0); with `keep`, the noised `known` is pasted every step.
torch::Tensor reverse_chain(const Schedule& schedule, const EpsModel& model, torch::Tensor x,
                            const std::vector<double>& grid, VarianceType variance, bool clip_x0,
                            const torch::Tensor& keep, const torch::Tensor& known, const NoiseFn& noise,
                            const StepCallback& on_step);

}  // namespace ddpm
