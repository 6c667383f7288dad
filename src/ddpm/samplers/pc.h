// pc.h — predictor–corrector sampling for the VP SDE (Song et al. 2021, Algorithms 2–3 and 5, the VP version):
// a reverse-diffusion (or ancestral) predictor step, then `corrector_steps` Langevin MCMC steps at the new time
// with the step size of the signal-to-noise rule. Not an ODE solver and not plain ancestral sampling (that is
// the predictor alone, corrector_steps = 0).
//
// Notation (Song et al. 2021; τ_S > … > τ_1 the visited times of sampler.h's time_grid, uniform by default):
//   ᾱ_i, b_i       ᾱ_{τ_i}; b_i = 1 − ᾱ_i/ᾱ_{i−1}, the β of the respaced chain (β_t itself when S = T)
//   s(x, τ)        the score −ε̂(x, τ)/√(1 − ᾱ_τ)
//   predictor      reverse diffusion (Algorithm 3 line 3; App. E): x' = (2 − √(1 − b_i)) x + b_i s(x, τ_i) + √b_i z
//                  ancestral (App. F, the VP case):               x' = (x + b_i s(x, τ_i))/√(1 − b_i) + √b_i z
//                  (= DDPM's Algorithm 2 step with σ² = β, written with the score)
//   corrector      M times at τ_{i−1} (Algorithm 5, VP): g = s(x, τ_{i−1}), z ~ N(0, I),
//                  ε = 2 α (r ‖z‖₂/‖g‖₂)², x ← x + ε g + √(2ε) z, with r the target snr and
//                  α = 1 − β_τ of the trained schedule at τ = τ_{i−1} (⌊τ⌋ for a fractional time)
// The norms are per image: the reference code (score_sde's LangevinCorrector) averages them over the batch,
// which would make an image depend on the others in its batch; here each image takes its own step size.
// The last step, from τ_1 to ᾱ = 1, is no predictor step and has no corrector: it returns x̂_0 (as every sampler
// here does). So S steps with M corrector steps cost S + M (S − 1) NFE: S predictor evaluations (the last one
// gives x̂_0) and M at each of the S − 1 intermediate times.
//
// With a fixed snr the corrector's step does not shrink as S grows, so the sampler keeps a bias of its own on
// an exact model (unadjusted Langevin's): for N(0, 0.5²) data and r = 0.16 its output variance is 6 % high at
// 80 steps and still 3 % high at 400 (tests/test_sde_samplers.cpp measures it), where vp-sde's error keeps
// halving as the steps double. The snr rule is meant for images of many pixels, where ‖z‖/‖g‖ is nearly
// constant: on 2×2 "images" of N(0, 1) data it swings so much that the output std came out 38 % high.
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <string>

namespace ddpm {

enum class PCPredictor { ReverseDiffusion, Ancestral };
PCPredictor parse_pc_predictor(const std::string& name);  // "reverse-diffusion" | "ancestral"; throws otherwise
std::string to_string(PCPredictor p);

struct PCOptions {
  int64_t steps = 0;                   // S visited times; 0 = all T
  Spacing spacing = Spacing::Uniform;  // any spacing of sampler.h
  int64_t corrector_steps = 1;         // M ≥ 0 Langevin steps after each predictor step
  double snr = 0.16;                   // r > 0 (Song et al.'s value for their VP models)
  PCPredictor predictor = PCPredictor::ReverseDiffusion;
  bool clip_x0 = true;                 // clip x̂_0 to [−1, 1] (ε̂, hence the score, recomputed from it)
  StepCallback on_step;
};

// Throws if corrector_steps < 0 or snr is not positive and finite.
void check_pc_options(const PCOptions& opts);
// S + M (S − 1): the NFE of `steps` S (≥ 1) with M corrector steps.
int64_t pc_nfe(int64_t steps, int64_t corrector_steps);

// x_T [B,C,H,W] (standard normal) -> x_0. Draws 1 + M noises of x's shape per step but the last.
torch::Tensor pc_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                        const NoiseFn& noise, const PCOptions& opts = {});

}  // namespace ddpm
