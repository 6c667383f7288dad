// interpolate.h — interpolation between two images through the latent space of the deterministic sampler (Song,
// Meng, Ermon 2021, "DDIM", §5.3 and Fig. 6): invert both images with η = 0 DDIM to x_T, interpolate the latents
// spherically (slerp, because x_T is concentrated near the sphere of radius √d; Shoemake 1985), and sample each
// latent back with η = 0 DDIM over the same steps. Not here: the inversion itself (samplers/ddim.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

namespace ddpm {

// Per image: sin((1−α)θ)/sin θ · a + sin(αθ)/sin θ · b with θ the angle between a and b (linear when they are
// nearly parallel); α = 0 and 1 return a and b exactly. a, b [B,...] -> [B,...]
torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double alpha);

// The latents of `frames` images evenly spaced from a to b (α = f/(frames−1)), input by input:
// [B,C,H,W] × 2 -> [B·frames, C,H,W] (rows b·frames … b·frames + frames − 1 belong to input b). frames ≥ 2.
torch::Tensor interpolation_latents(const torch::Tensor& z_a, const torch::Tensor& z_b, int64_t frames);

struct InterpolateOptions {
  int64_t frames = 8;
  int64_t steps = 50;  // DDIM steps of the inversion and of the sampling back
  bool clip_x0 = true; // sampling back: clip x̂_0 (a trained model's in-between latents give out-of-range x̂_0 and
                       // speckle without it); the inversion never clips
  StepCallback on_step;
};

// x_a, x_b [B,C,H,W] in [−1, 1] -> [B·frames, C,H,W] (α = 0 is the η = 0 DDIM round trip of x_a).
// The model must accept B·frames images at once (the CLI batches: interpolation_latents + ddim_sample).
torch::Tensor interpolate(const Schedule& schedule, const EpsModel& model_ab, const EpsModel& model_frames,
                          const torch::Tensor& x_a, const torch::Tensor& x_b, const InterpolateOptions& opts = {});

}  // namespace ddpm
