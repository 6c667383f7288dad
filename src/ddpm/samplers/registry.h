// registry.h — the samplers by name, for the CLI and the trainer: one options struct, one entry point, and the
// NFE each choice really costs.
//   name     what                                   NFE                       default steps, spacing
//   ddpm     ancestral sampling (ddpm_sampler.h)    steps                     T, uniform
//   ddim     DDIM with η (ddim.h)                   steps                     50, uniform
//   dpm++2m  DPM-Solver++(2M) (dpm_solver.h)        steps                     20, logsnr
//   dpm++3m  DPM-Solver++(3M)                       steps                     20, logsnr
//   euler    Euler in σ (euler.h)                   steps                     50, karras
//   heun     Heun in σ (heun.h)                     2·steps − 1               18 (35 NFE), karras
//   edm-sde  EDM stochastic Heun (edm_sde.h)        2·steps − 1               18 (35 NFE), karras
//   vp-sde   reverse VP SDE, Euler–Maruyama         steps                     T, uniform
//            (vp_sde.h)
//   pc       predictor–corrector (pc.h)             steps + M·(steps − 1)     T (M = 1: 2T − 1 NFE), uniform
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/pc.h"
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
  double rho = 7.0;                                  // euler, heun, edm-sde (karras spacing)
  double s_churn = 30.0, s_tmin = 0.01, s_tmax = 1.0;  // edm-sde (edm_sde.h: EDM Table 5, CIFAR-10 VP)
  double s_noise = 1.007;                            // edm-sde
  int64_t corrector_steps = 1;                       // pc: Langevin steps M after each predictor step
  double snr = 0.16;                                 // pc: target signal-to-noise ratio r
  PCPredictor predictor = PCPredictor::ReverseDiffusion;  // pc
  bool clip_x0 = true;
  StepCallback on_step;
};

std::vector<std::string> sampler_names();
// Throws on an unknown name, steps outside the valid range for T, a negative η, or bad edm-sde/pc options.
void check_sampler_options(const SamplerOptions& o, int64_t T);
int64_t sampler_steps(const SamplerOptions& o, int64_t T);  // steps with the default applied
Spacing sampler_spacing(const SamplerOptions& o);           // spacing with the default applied
int64_t sampler_nfe(const SamplerOptions& o, int64_t T);    // network evaluations per image
bool sampler_uses_noise(const SamplerOptions& o);           // ddpm, vp-sde, pc, ddim with η > 0, edm-sde with churn

// Runs the named sampler from x_T [B,C,H,W] to x_0.
torch::Tensor run_sampler(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const SamplerOptions& o);

}  // namespace ddpm
