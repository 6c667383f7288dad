// repaint.h — RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic
// Models", Alg. 1 and §4.2): replacement (replace.h) plus resampling — after some reverse steps, the whole image
// goes back up L levels with the forward process, x_t = √(1−β_t) x_{t−1} + √β_t z (q(x_t | x_{t−1}), here between
// visited levels: β = 1 − ᾱ_t/ᾱ_{t−1}), and comes down again, so the model harmonises the pasted known region
// with what it generated. The jump schedule is the official code's (jump length L, R resamplings: every L-th level
// below S − L is revisited R − 1 more times); the paper's reference setting is 250 steps, L = 10, R = 10
// (2,410 model calls). R = 1 is replacement. The published Algorithm 1 typesets the known part without its
// √(1−ᾱ) and with an off-by-one time index; this follows the corrected form (the same as replace.h), which the
// Gaussian oracle in tests/test_restoration.cpp checks. Not here: the mask (known_region.h, masks.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <vector>

namespace ddpm {

struct RePaintOptions {
  int64_t steps = 100;        // levels of the respaced chain
  int64_t jump_length = 10;   // L: levels per jump back up
  int64_t resample = 5;       // R: visits of each jump point (1 = replace)
  VarianceType variance = VarianceType::FixedSmall;
  bool clip_x0 = true;
  StepCallback on_step;       // (down steps done, down steps in all)
};

// The levels visited, S (x_T) first and 0 (x_0) last: consecutive entries differ by one; a decrease is a reverse
// step (one model call), an increase a forward (re-noising) step. Throws on steps < 1, L < 1 or R < 1.
std::vector<int64_t> repaint_levels(int64_t steps, int64_t jump_length, int64_t resample);
// Model calls of that schedule (the number of decreases).
int64_t repaint_nfe(int64_t steps, int64_t jump_length, int64_t resample);

// x_T [B,C,H,W], y [B,C,H,W], keep [1|B, 1|C, H, W] 0/1 -> x_0 [B,C,H,W]. Noise per reverse step as in
// replace_inpaint, one draw per forward step.
torch::Tensor repaint_inpaint(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                              const torch::Tensor& y, const torch::Tensor& keep, const NoiseFn& noise,
                              const RePaintOptions& opts = {});

}  // namespace ddpm
