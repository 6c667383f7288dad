// sampler.cpp — shared pieces of the samplers: timestep respacing and noise sources.
#include "ddpm/samplers/sampler.h"

#include "ddpm/runtime.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

std::vector<int64_t> respaced_timesteps(int64_t T, int64_t steps) {
  if (steps < 1 || steps > T)
    throw std::runtime_error("sampling steps must be in [1, " + std::to_string(T) + "], got " + std::to_string(steps));
  if (steps == 1) return {T - 1};
  std::vector<int64_t> ts;
  const double stride = static_cast<double>(T - 1) / static_cast<double>(steps - 1);
  for (int64_t i = 0; i < steps; ++i) ts.push_back(static_cast<int64_t>(std::llround(i * stride)));
  return ts;
}

NoiseFn generator_noise(torch::Generator gen) {
  return [gen](at::IntArrayRef shape) mutable { return torch::randn(shape, gen, torch::kFloat32); };
}

PerImageNoise::PerImageNoise(uint64_t seed, int64_t count) {
  constexpr uint64_t kStreamSampling = 101;
  for (int64_t i = 0; i < count; ++i) gens_.push_back(make_generator(mix_seed(seed, static_cast<uint64_t>(i), kStreamSampling)));
}

torch::Tensor PerImageNoise::draw(int64_t first, at::IntArrayRef shape) {
  TORCH_CHECK(!shape.empty() && first >= 0 && first + shape[0] <= static_cast<int64_t>(gens_.size()),
              "PerImageNoise: images [", first, ", ", first + (shape.empty() ? 0 : shape[0]), ") out of range");
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < shape[0]; ++i) parts.push_back(torch::randn(shape.slice(1), gens_[first + i], torch::kFloat32));
  return torch::stack(parts);  // [n, ...]
}

NoiseFn PerImageNoise::slice(int64_t first) {
  return [this, first](at::IntArrayRef shape) { return draw(first, shape); };
}

}  // namespace ddpm
