// sampler.h — what every sampler shares: the callable model type, noise sources, timestep selection and the
// (ε, x̂_0) pair of one model evaluation.
// Samplers receive a callable, never the network (stable-diffusion.cpp style), so they are tested with
// closed-form models and cannot reach into the UNet. Whatever the network predicts (ε, x_0 or v), the caller
// wraps it as an ε-model with prediction.h's adapter; class-conditioning and guidance are wrapped the same way.
//
// Conventions of every sampler: it starts from x_T given by the caller ([B,C,H,W], standard normal), its last
// step lands on ᾱ = 1 (σ = 0), so it returns the final x_0 prediction; it reports progress through an optional
// StepCallback; it draws any noise through a NoiseFn on the CPU.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ddpm {

// ε-prediction model: x_t [B,C,H,W], t [B] timesteps of the trained schedule -> ε [B,C,H,W]. t is int64
// (0..T-1) for samplers on the discrete timesteps and float64 (fractional, see Schedule::t_for_sigma) for the
// σ-space samplers (Euler, Heun).
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

// Where a sampler evaluates the model: `steps` times t in [0, T−1] (fractional allowed: Schedule::alpha_bar_at).
//   uniform    round(linspace(0, T−1, steps)): respaced_timesteps, includes both ends (improved-diffusion)
//   trailing   round(T − k·T/steps) − 1, k = 0..steps−1: starts at T−1, finest near t = 0 is T/steps − 1
//              (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed", Table 2)
//   quadratic  ⌊(i · √(0.8 T)/(steps−1))²⌋, i = 0..steps−1: dense at low noise (the DDIM paper's CIFAR-10
//              choice, Song et al. 2021 App. D.2); values that repeat are bumped up by one to stay distinct
//   logsnr     uniform in λ = log(√ᾱ/√(1−ᾱ)) from λ_{T−1} to λ_0 (DPM-Solver, Lu et al. 2022, §3.3 / App. D.1:
//              "logSNR" steps), fractional t
//   karras     EDM's σ_i = (σ_max^{1/ρ} + i/(N−1)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ (Karras et al. 2022, eq. 5)
//              between σ_{T−1} and σ_0, fractional t
// The first three are integer timesteps (the model sees exactly the trained t); the last two are fractional.
enum class Spacing { Uniform, Trailing, Quadratic, LogSNR, Karras };
Spacing parse_spacing(const std::string& name);  // throws on an unknown name
std::string to_string(Spacing s);
// Integer spacings only: ascending, strictly increasing timesteps. Throws if steps is outside [1, T].
std::vector<int64_t> timesteps_for(Spacing spacing, int64_t T, int64_t steps);

struct Schedule;
// Any spacing: ascending, strictly increasing t in [0, T−1], exactly integral for the integer spacings.
std::vector<double> time_grid(Spacing spacing, const Schedule& schedule, int64_t steps, double rho = 7.0);
// ᾱ at t: the table at integers (bit-exact), the log-σ interpolation in between.
double alpha_bar_of(const Schedule& schedule, double t);

// One model evaluation at noise level ᾱ for the whole batch x [B,C,H,W]: ε and x̂_0 = (x − √(1−ᾱ) ε)/√ᾱ
// (eq. 15). With clip, x̂_0 is clamped to [−1, 1] and ε recomputed from it, so (ε, x̂_0) stay consistent with x
// (then DDIM with η = 1 and DDPM take identical steps).
struct Denoised {
  torch::Tensor eps, x0;  // [B,C,H,W]
};
Denoised denoise(const EpsModel& model, const torch::Tensor& x, const torch::Tensor& t, double alpha_bar, bool clip);
// The same at time t (all images): an int64 t tensor when t is integral, float64 otherwise; ᾱ = alpha_bar_of(t).
Denoised denoise(const EpsModel& model, const torch::Tensor& x, const Schedule& schedule, double t, bool clip);

}  // namespace ddpm
