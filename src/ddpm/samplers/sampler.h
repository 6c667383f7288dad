// sampler.h — what every sampler shares: the callable model type and timestep selection.
// Samplers receive a callable, never the network (stable-diffusion.cpp style), so they are tested with
// closed-form models and cannot reach into the UNet.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace ddpm {

// ε-prediction model: x_t [B,C,H,W], t [B] int64 timesteps of the trained schedule (0..T-1) -> ε [B,C,H,W].
using EpsModel = std::function<torch::Tensor(const torch::Tensor& x_t, const torch::Tensor& t)>;

// Called after each reverse step: (steps done, steps total).
using StepCallback = std::function<void(int64_t, int64_t)>;

// Standard normal noise of a given shape [B, ...], as CPU float32. Samplers draw all their noise through one of
// these, on the CPU, so one seed gives the same images on every device.
using NoiseFn = std::function<torch::Tensor(at::IntArrayRef shape)>;

// Every draw from one generator (the handle is shared: draws advance `gen`).
NoiseFn generator_noise(torch::Generator gen);

// Image i draws from its own generator seeded by (seed, i), so an image does not depend on how many images are
// generated with it or how they are split into batches.
class PerImageNoise {
 public:
  PerImageNoise(uint64_t seed, int64_t count);
  // Noise for images [first, first + shape[0]) -> [n, ...] float32.
  torch::Tensor draw(int64_t first, at::IntArrayRef shape);
  // A NoiseFn for the images [first, first + n) (keeps a reference to this object).
  NoiseFn slice(int64_t first);

 private:
  std::vector<torch::Generator> gens_;
};

// `steps` timesteps out of 0..T-1, evenly spaced and rounded, always including 0 and T-1 (improved-diffusion's
// space_timesteps with one section). Ascending. steps == T gives every timestep.
std::vector<int64_t> respaced_timesteps(int64_t T, int64_t steps);

}  // namespace ddpm
