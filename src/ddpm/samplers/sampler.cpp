// sampler.cpp — shared pieces of the samplers: timestep respacing and noise sources.
#include "ddpm/samplers/sampler.h"

#include "ddpm/diffusion/schedule.h"
#include "ddpm/util/runtime.h"

#include <algorithm>
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

Spacing parse_spacing(const std::string& name) {
  if (name == "uniform") return Spacing::Uniform;
  if (name == "trailing") return Spacing::Trailing;
  if (name == "quadratic") return Spacing::Quadratic;
  if (name == "logsnr") return Spacing::LogSNR;
  if (name == "karras") return Spacing::Karras;
  throw std::runtime_error("unknown timestep spacing '" + name +
                           "' (expected uniform, trailing, quadratic, logsnr or karras)");
}

std::string to_string(Spacing s) {
  switch (s) {
    case Spacing::Uniform: return "uniform";
    case Spacing::Trailing: return "trailing";
    case Spacing::Quadratic: return "quadratic";
    case Spacing::LogSNR: return "logsnr";
    case Spacing::Karras: return "karras";
  }
  return "?";
}

std::vector<int64_t> timesteps_for(Spacing spacing, int64_t T, int64_t steps) {
  if (spacing == Spacing::LogSNR || spacing == Spacing::Karras)
    throw std::logic_error("timesteps_for: " + to_string(spacing) + " spacing is fractional; use time_grid");
  if (spacing == Spacing::Uniform) return respaced_timesteps(T, steps);
  if (steps < 1 || steps > T)
    throw std::runtime_error("sampling steps must be in [1, " + std::to_string(T) + "], got " + std::to_string(steps));
  std::vector<int64_t> ts(static_cast<size_t>(steps));
  if (spacing == Spacing::Trailing) {
    const double stride = static_cast<double>(T) / static_cast<double>(steps);
    for (int64_t k = 0; k < steps; ++k)
      ts[static_cast<size_t>(steps - 1 - k)] = std::llround(static_cast<double>(T) - k * stride) - 1;
  } else {  // quadratic
    // (i·√(0.8T)/(S−1))² = 4 T i² / (5 (S−1)²), computed so that the last one is exactly ⌊0.8 T⌋.
    for (int64_t i = 0; i < steps; ++i) {
      const double num = 4.0 * static_cast<double>(T) * static_cast<double>(steps == 1 ? 1 : i * i);
      const double den = 5.0 * static_cast<double>(steps == 1 ? 1 : (steps - 1) * (steps - 1));
      ts[static_cast<size_t>(i)] = static_cast<int64_t>(std::floor(num / den));
    }
    for (size_t i = 1; i < ts.size(); ++i) ts[i] = std::max(ts[i], ts[i - 1] + 1);  // keep them distinct
    if (ts.back() > T - 1)
      throw std::runtime_error("quadratic spacing cannot fit " + std::to_string(steps) + " distinct steps in T = " +
                               std::to_string(T));
  }
  return ts;
}

Denoised denoise(const EpsModel& model, const torch::Tensor& x, const torch::Tensor& t, double alpha_bar, bool clip) {
  Denoised d;
  d.eps = model(x, t);                                                              // [B,C,H,W]
  d.x0 = (x - std::sqrt(1.0 - alpha_bar) * d.eps) / std::sqrt(alpha_bar);         // eq. 15
  if (clip) {
    d.x0 = d.x0.clamp(-1.0, 1.0);
    d.eps = (x - std::sqrt(alpha_bar) * d.x0) / std::sqrt(1.0 - alpha_bar);        // eq. 4 solved for ε
  }
  return d;
}

std::vector<double> time_grid(Spacing spacing, const Schedule& schedule, int64_t steps, double rho) {
  const int64_t T = schedule.T;
  if (steps < 1 || steps > T)
    throw std::runtime_error("sampling steps must be in [1, " + std::to_string(T) + "], got " + std::to_string(steps));
  std::vector<double> ts;
  if (spacing == Spacing::LogSNR || spacing == Spacing::Karras) {
    // σ values, decreasing, from σ_{T−1} to σ_0; then their fractional timesteps, ascending.
    std::vector<double> sig;
    const double s_max = schedule.sigma(T - 1), s_min = schedule.sigma(0);
    if (steps == 1) {
      sig = {s_max};
    } else if (spacing == Spacing::LogSNR) {
      for (int64_t i = 0; i < steps; ++i)  // λ = −log σ uniform
        sig.push_back(std::exp(std::log(s_max) + static_cast<double>(i) / static_cast<double>(steps - 1) *
                                                       (std::log(s_min) - std::log(s_max))));
    } else {
      const double hi = std::pow(s_max, 1.0 / rho), lo = std::pow(s_min, 1.0 / rho);
      for (int64_t i = 0; i < steps; ++i)
        sig.push_back(std::pow(hi + static_cast<double>(i) / static_cast<double>(steps - 1) * (lo - hi), rho));
    }
    for (auto it = sig.rbegin(); it != sig.rend(); ++it) ts.push_back(schedule.t_for_sigma(*it));
    ts.back() = static_cast<double>(T - 1);  // the ends exactly, whatever the rounding of exp/log
    if (steps > 1) ts.front() = 0.0;
    for (size_t i = 1; i < ts.size(); ++i)
      if (!(ts[i] > ts[i - 1]))
        throw std::runtime_error(std::to_string(steps) + " " + to_string(spacing) + " steps are too many for T = " +
                                 std::to_string(T));
    return ts;
  }
  for (auto t : timesteps_for(spacing, T, steps)) ts.push_back(static_cast<double>(t));
  return ts;
}

double alpha_bar_of(const Schedule& schedule, double t) {
  if (t == std::floor(t) && t >= 0 && t < static_cast<double>(schedule.T))
    return schedule.alphas_cumprod.data_ptr<double>()[static_cast<int64_t>(t)];
  return schedule.alpha_bar_at(t);
}

Denoised denoise(const EpsModel& model, const torch::Tensor& x, const Schedule& schedule, double t, bool clip) {
  const auto dev = torch::TensorOptions().device(x.device());
  const auto tt = t == std::floor(t) ? torch::full({x.size(0)}, static_cast<int64_t>(t), dev.dtype(torch::kLong))
                                     : torch::full({x.size(0)}, t, dev.dtype(torch::kFloat64));  // [B]
  return denoise(model, x, tt, alpha_bar_of(schedule, t), clip);
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
