// sdedit.h — SDEdit (Meng et al. 2021, "SDEdit: Guided Image Synthesis and Editing with Stochastic Differential
// Equations", Alg. 1 with the VP-SDE, and its masked variant, Alg. 3): noise a guide image to t_0 = strength·T,
//   x_{t_0} = √ᾱ_{t_0} x_guide + √(1−ᾱ_{t_0}) z,
// then run the DDPM reverse chain from t_0. Low strength keeps the guide's detail, high strength keeps only its
// layout; even strength 1 leaks √ᾱ_{T−1} of the guide (0.0064 for the linear schedule of T = 1000). With a keep
// mask, the kept pixels are pasted back every step as in replacement (replace.h) and come back exactly.
// The chain itself is replace.h's reverse_chain. Not here: inversion (DDIM, interpolate.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <vector>

namespace ddpm {

// t_0 of a strength in (0, 1]: ⌈strength·T⌉ − 1 (strength 1 is T − 1). Throws outside (0, 1].
int64_t sdedit_start(double strength, int64_t T);
// The reverse steps SDEdit takes: `steps`, or with 0 the default max(1, round(strength · 100)).
int64_t sdedit_steps(double strength, int64_t steps);
// `steps` integer timesteps from 0 to t0 inclusive, evenly spaced, ascending (respaced_timesteps on 0..t0);
// steps is capped at t0 + 1.
std::vector<double> grid_from(int64_t t0, int64_t steps);

struct SDEditOptions {
  double strength = 0.5;
  int64_t steps = 0;                      // reverse steps from t_0; 0 = max(1, round(strength · 100))
  VarianceType variance = VarianceType::FixedSmall;
  bool clip_x0 = true;
  torch::Tensor keep;                     // optional [1|B, 1|C, H, W] 0/1: 1 = keep the guide's pixel
  StepCallback on_step;
};

// guide [B,C,H,W] in [−1, 1] -> x_0 [B,C,H,W]. The first draw from `noise` is z of x_{t_0}.
torch::Tensor sdedit(const Schedule& schedule, const EpsModel& model, const torch::Tensor& guide,
                     const NoiseFn& noise, const SDEditOptions& opts = {});

}  // namespace ddpm
