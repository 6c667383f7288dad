// guidance.h — classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6):
//   ε̃(x_t, c) = (1 + w) ε(x_t, c) − w ε(x_t, ∅)
// w = 0 is plain conditional sampling; larger w trades diversity for fidelity to the class. (diffusers and
// Stable Diffusion write the same thing as ε(∅) + s (ε(c) − ε(∅)) with scale s = 1 + w.) Both halves run in one
// batched forward pass of 2B images.
#pragma once

#include "ddpm/samplers/sampler.h"

#include <functional>

namespace ddpm {

// A class-conditional ε-model: x_t [B,C,H,W], t [B], labels y [B] int64 -> ε [B,C,H,W].
using CondEpsModel = std::function<torch::Tensor(const torch::Tensor& x_t, const torch::Tensor& t, const torch::Tensor& y)>;

// The guided ε-model for the fixed labels [B] (on x's device or CPU); null_label is the ∅ class. w = 0 calls the
// model once on the labels alone.
EpsModel classifier_free_guidance(CondEpsModel model, torch::Tensor labels, int64_t null_label, double w);

}  // namespace ddpm
