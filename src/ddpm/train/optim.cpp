// optim.cpp — see optim.h.
#include "ddpm/train/optim.h"

#include <algorithm>
#include <cmath>

namespace ddpm {

Adam::Adam(std::vector<torch::Tensor> params, double beta1, double beta2, double eps)
    : params_(std::move(params)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

void Adam::step(double lr) {
  torch::NoGradGuard ng;
  ++t_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& g = params_[i].grad();
    if (!g.defined()) continue;
    m_[i].mul_(beta1_).add_(g, 1.0 - beta1_);                    // m_t = β1 m + (1 − β1) g
    v_[i].mul_(beta2_).addcmul_(g, g, 1.0 - beta2_);             // v_t = β2 v + (1 − β2) g²
    auto denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(eps_);     // √v̂_t + ε
    params_[i].addcdiv_(m_[i], denom, -lr / bc1);                // θ −= α m̂_t / (√v̂_t + ε)
  }
}

double ema_decay_at(double decay, int64_t n) {
  return std::min(decay, (1.0 + static_cast<double>(n)) / (10.0 + static_cast<double>(n)));
}

double lr_at(const TrainConfig& t, int64_t step) {
  if (t.warmup <= 0) return t.lr;
  return t.lr * std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(t.warmup));
}

}  // namespace ddpm
