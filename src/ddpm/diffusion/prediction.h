// prediction.h — what the network predicts, and the one adapter between that and what samplers need.
//
// A network can be trained to predict (x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, eq. 4 of Ho et al. 2020):
//   eps  ε                                  (Ho et al. 2020, eq. 14: L_simple)
//   x0   x_0                                (the "predict x_0" variant, Ho et al. 2020 §4.2)
//   v    v = √ᾱ_t ε − √(1 − ᾱ_t) x_0        (Salimans & Ho 2022, "Progressive distillation", §4 and App. D)
// Samplers only ever see an ε-model (samplers/sampler.h); to_eps() converts any of the three, so no sampler
// branches on the target. Each conversion is an affine map of the output for fixed (x_t, t), so classifier-free
// guidance applied to ε equals guidance applied to the raw output.
// Size legend: B batch, C×H×W image; `a` is ᾱ_t broadcastable to [B,C,H,W].
#pragma once

#include <torch/torch.h>

#include <string>

namespace ddpm {

enum class Prediction { Eps, X0, V };

Prediction parse_prediction(const std::string& name);  // "eps" | "x0" | "v"; throws otherwise
std::string to_string(Prediction p);

// The training target for x_0 and ε at noise level a = ᾱ_t.                    -> [B,C,H,W]
torch::Tensor training_target(Prediction p, const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& a);

// Min-SNR-γ loss weights (Hang et al. 2023, §3.4): the x_0 loss weighted by min(SNR_t, γ), SNR_t = ᾱ/(1 − ᾱ),
// written for the squared error of each target: ε: min(SNR, γ)/SNR; v: min(SNR, γ)/(SNR + 1); x0: min(SNR, γ)
// (‖ε − ε̂‖² = SNR ‖x_0 − x̂_0‖², ‖v − v̂‖² = (SNR + 1) ‖x_0 − x̂_0‖²). Same shape as a.
torch::Tensor min_snr_weight(Prediction p, const torch::Tensor& a, double gamma);

// The network output `out` at (x_t, a) converted to ε and to x_0.               -> [B,C,H,W]
torch::Tensor to_eps(Prediction p, const torch::Tensor& out, const torch::Tensor& x_t, const torch::Tensor& a);
torch::Tensor to_x0(Prediction p, const torch::Tensor& out, const torch::Tensor& x_t, const torch::Tensor& a);

}  // namespace ddpm
