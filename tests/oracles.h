// oracles.h — closed-form ε-models that need no trained weights (design notes §5).
#pragma once

#include "ddpm/samplers/sampler.h"
#include "ddpm/schedule.h"

namespace ddpm::test {

// Data = one image x*: the exact ε is (x_t − √ᾱ_t x*) / √(1 − ᾱ_t).
inline EpsModel single_image_eps(const Schedule& s, torch::Tensor x_star /*[1,C,H,W]*/) {
  return [&s, x_star](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto a = extract(s.alphas_cumprod, t, x_t);
    return (x_t - a.sqrt() * x_star) / (1 - a).sqrt();
  };
}

// Data ~ N(0, s² I): the exact ε is √(1−ᾱ_t) x_t / (ᾱ_t s² + 1 − ᾱ_t).
inline EpsModel gaussian_eps(const Schedule& s, double sd) {
  return [&s, sd](const torch::Tensor& x_t, const torch::Tensor& t) {
    auto a = extract(s.alphas_cumprod, t, x_t);
    return (1 - a).sqrt() * x_t / (a * sd * sd + 1 - a);
  };
}

}  // namespace ddpm::test
