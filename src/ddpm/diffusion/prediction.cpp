// prediction.cpp — see prediction.h. All identities follow from x_t = √a x_0 + √(1 − a) ε and
// v = √a ε − √(1 − a) x_0 (so ε = √a v + √(1 − a) x_t and x_0 = √a x_t − √(1 − a) v).
#include "ddpm/diffusion/prediction.h"

#include <stdexcept>

namespace ddpm {

Prediction parse_prediction(const std::string& name) {
  if (name == "eps") return Prediction::Eps;
  if (name == "x0") return Prediction::X0;
  if (name == "v") return Prediction::V;
  throw std::runtime_error("unknown prediction target '" + name + "' (expected eps, x0 or v)");
}

std::string to_string(Prediction p) {
  switch (p) {
    case Prediction::Eps: return "eps";
    case Prediction::X0: return "x0";
    case Prediction::V: return "v";
  }
  return "?";
}

torch::Tensor training_target(Prediction p, const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& a) {
  switch (p) {
    case Prediction::Eps: return eps;
    case Prediction::X0: return x0;
    case Prediction::V: return a.sqrt() * eps - (1 - a).sqrt() * x0;
  }
  throw std::logic_error("training_target: bad prediction kind");
}

torch::Tensor min_snr_weight(Prediction p, const torch::Tensor& a, double gamma) {
  const auto snr = a / (1 - a);
  const auto clipped = snr.clamp_max(gamma);  // min(SNR, γ)
  switch (p) {
    case Prediction::Eps: return clipped / snr;
    case Prediction::X0: return clipped;
    case Prediction::V: return clipped / (snr + 1);
  }
  throw std::logic_error("min_snr_weight: bad prediction kind");
}

torch::Tensor to_eps(Prediction p, const torch::Tensor& out, const torch::Tensor& x_t, const torch::Tensor& a) {
  switch (p) {
    case Prediction::Eps: return out;
    case Prediction::X0: return (x_t - a.sqrt() * out) / (1 - a).sqrt();
    case Prediction::V: return a.sqrt() * out + (1 - a).sqrt() * x_t;
  }
  throw std::logic_error("to_eps: bad prediction kind");
}

torch::Tensor to_x0(Prediction p, const torch::Tensor& out, const torch::Tensor& x_t, const torch::Tensor& a) {
  switch (p) {
    case Prediction::Eps: return (x_t - (1 - a).sqrt() * out) / a.sqrt();
    case Prediction::X0: return out;
    case Prediction::V: return a.sqrt() * x_t - (1 - a).sqrt() * out;
  }
  throw std::logic_error("to_x0: bad prediction kind");
}

}  // namespace ddpm
