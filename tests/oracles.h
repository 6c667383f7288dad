// oracles.h — closed-form models that need no trained weights (design notes §5). They accept integer timesteps and
// the fractional ones of the σ-space samplers (Schedule::alpha_bar interpolates).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/samplers/sampler.h"

#include <cmath>

namespace ddpm::test {

// Data = one image x*: the exact ε is (x_t − √ᾱ_t x*) / √(1 − ᾱ_t).
inline EpsModel single_image_eps(const Schedule& s, torch::Tensor x_star /*[1,C,H,W]*/) {
  return [&s, x_star](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto a = s.alpha_bar(t, x_t);
    return (x_t - a.sqrt() * x_star.to(x_t.dtype())) / (1 - a).sqrt();
  };
}

// Data ~ N(0, s² I): the exact ε is √(1−ᾱ_t) x_t / (ᾱ_t s² + 1 − ᾱ_t).
inline EpsModel gaussian_eps(const Schedule& s, double sd) {
  return [&s, sd](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto a = s.alpha_bar(t, x_t);
    return (1 - a).sqrt() * x_t / (a * sd * sd + 1 - a);
  };
}

// The same Gaussian data, but the exact x_0 prediction E[x_0 | x_t] = √ᾱ s² x_t / (ᾱ s² + 1 − ᾱ) and the exact
// v = √ᾱ ε − √(1−ᾱ) x_0, written out independently of prediction.h (raw model outputs, not ε).
inline EpsModel gaussian_x0(const Schedule& s, double sd) {
  return [&s, sd](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto a = s.alpha_bar(t, x_t);
    return a.sqrt() * sd * sd * x_t / (a * sd * sd + 1 - a);
  };
}
inline EpsModel gaussian_v(const Schedule& s, double sd) {
  return [&s, sd](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto a = s.alpha_bar(t, x_t);
    auto denom = a * sd * sd + 1 - a;
    auto eps = (1 - a).sqrt() * x_t / denom;
    auto x0 = a.sqrt() * sd * sd * x_t / denom;
    return a.sqrt() * eps - (1 - a).sqrt() * x0;
  };
}

// The exact probability-flow ODE map for N(0, s²) data: from x_T at timestep T−1 to
// x_0 = x_T · s / √(ᾱ_{T−1} s² + 1 − ᾱ_{T−1})  (x/√ᾱ grows like √(s² + σ²) along the ODE).
inline torch::Tensor gaussian_ode_x0(const Schedule& s, const torch::Tensor& x_T, double sd) {
  const double a = s.alphas_cumprod.data_ptr<double>()[s.T - 1];
  return x_T * (sd / std::sqrt(a * sd * sd + 1 - a));
}

}  // namespace ddpm::test
