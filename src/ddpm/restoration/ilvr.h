// ilvr.h — ILVR, iterative latent variable refinement (Choi et al. 2021, "ILVR: Conditioning Method for Denoising
// Diffusion Probabilistic Models", Alg. 1): after each DDPM step the low frequencies of the proposal are
// replaced by those of the reference noised to the same level,
//   x_{t−1} ← x' − φ(x') + φ(y_{t−1}),   y_{t−1} ~ q(y_{t−1} | A†y),   φ = A†A (down- then up-sampling),
// so the result's low-resolution image is y exactly (the last step noises nothing). Made for super-resolution
// (AvgPoolOperator) but any operator's A†A works. Not here: DDNM's range-space correction of x̂_0 (ddnm.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/restoration/operators.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

struct ILVROptions {
  int64_t steps = 100;
  VarianceType variance = VarianceType::FixedSmall;
  bool clip_x0 = true;
  StepCallback on_step;
};

// x_T [B,C,H,W], y in the operator's observation shape (e.g. [B,C,H/k,W/k]) -> x_0 [B,C,H,W]. Per step, noise for
// the DDPM step, then for the reference (neither on the last step).
torch::Tensor ilvr_restore(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                           const LinearOperator& op, const torch::Tensor& y, const NoiseFn& noise,
                           const ILVROptions& opts = {});

}  // namespace ddpm
