// registry.h — the samplers by name, for the CLI and the trainer: one options struct, one entry point, and the
// NFE each choice really costs.
//   name     what                                   NFE                       default steps, spacing
//   ddpm     ancestral sampling (ddpm_sampler.h)    steps                     T, uniform
//   ddim     DDIM with η (ddim.h)                   steps                     50, uniform
//   dpm++2m  DPM-Solver++(2M) (dpm_solver.h)        steps                     20, logsnr
//   dpm++3m  DPM-Solver++(3M)                       steps                     20, logsnr
//   euler    Euler in σ (euler.h)                   steps                     50, karras
//   heun     Heun in σ (heun.h)                     2·steps − 1               18 (35 NFE), karras
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <optional>
#include <string>
#include <vector>

namespace ddpm {

struct SamplerOptions {
  std::string name = "ddpm";
  int64_t steps = 0;                                 // 0: the sampler's default (above)
  double eta = 0.0;                                  // ddim only
  std::optional<Spacing> spacing;                    // unset: the sampler's default (above)
  VarianceType variance = VarianceType::FixedLarge;  // ddpm only
  double rho = 7.0;                                  // euler, heun
  bool clip_x0 = true;
  StepCallback on_step;
};

std::vector<std::string> sampler_names();
// Throws on an unknown name, steps outside the valid range for T, or a negative η.
void check_sampler_options(const SamplerOptions& o, int64_t T);
int64_t sampler_steps(const SamplerOptions& o, int64_t T);  // steps with the default applied
Spacing sampler_spacing(const SamplerOptions& o);           // spacing with the default applied
int64_t sampler_nfe(const SamplerOptions& o, int64_t T);    // network evaluations per image
bool sampler_uses_noise(const SamplerOptions& o);           // ddpm, or ddim with η > 0

// Runs the named sampler from x_T [B,C,H,W] to x_0.
torch::Tensor run_sampler(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const SamplerOptions& o);

}  // namespace ddpm
