// optim.cpp — see optim.h.
#include "ddpm/train/optim.h"

#include <ATen/Parallel.h>

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

namespace {

// One parameter on the CPU (fp32, contiguous), in place. The same arithmetic as the LibTorch ops below.
// c1 = 1 − β1 and c2 = 1 − β2 are rounded from double, as LibTorch rounds its scalar arguments.
void adam_ema_cpu(float* p, const float* g, float* m, float* v, float* ema, int64_t n, float gs, float b1, float b2,
                  float c1, float c2, float inv_sqrt_bc2, float eps, float step_size, float ema_w) {
  at::parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float gi = g[i] * gs;
      const float mi = m[i] * b1 + c1 * gi;
      const float vi = v[i] * b2 + c2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
    if (ema)
      for (int64_t i = i0; i < i1; ++i) ema[i] += ema_w * (p[i] - ema[i]);
  });
}

bool fusable(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
}

}  // namespace

void Adam::step(double lr, double grad_scale, std::vector<torch::Tensor>* ema, double decay) {
  torch::NoGradGuard ng;
  ++t_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    torch::Tensor* e = ema ? &(*ema)[i] : nullptr;
    if (!g.defined()) {
      if (e) e->lerp_(p, 1.0 - decay);
      continue;
    }
    if (fusable(p) && fusable(g) && fusable(m_[i]) && fusable(v_[i]) && (!e || fusable(*e))) {
      adam_ema_cpu(p.data_ptr<float>(), g.data_ptr<float>(), m_[i].data_ptr<float>(), v_[i].data_ptr<float>(),
                   e ? e->data_ptr<float>() : nullptr, p.numel(), static_cast<float>(grad_scale),
                   static_cast<float>(beta1_), static_cast<float>(beta2_), static_cast<float>(1.0 - beta1_),
                   static_cast<float>(1.0 - beta2_), static_cast<float>(1.0 / std::sqrt(bc2)),
                   static_cast<float>(eps_), static_cast<float>(lr / bc1), static_cast<float>(1.0 - decay));
      // Written through raw pointers: tell LibTorch the tensors changed, as an in-place op would (the networks'
      // cached inference weights are keyed by version: weight_cast.h's WeightCast).
      for (auto* t : {&p, &m_[i], &v_[i], e})
        if (t) t->unsafeGetTensorImpl()->bump_version();
      continue;
    }
    auto gs = grad_scale == 1.0 ? g : g * grad_scale;
    m_[i].mul_(beta1_).add_(gs, 1.0 - beta1_);                   // m_t = β1 m + (1 − β1) g
    v_[i].mul_(beta2_).addcmul_(gs, gs, 1.0 - beta2_);           // v_t = β2 v + (1 − β2) g²
    auto denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(eps_);     // √v̂_t + ε
    p.addcdiv_(m_[i], denom, -lr / bc1);                         // θ −= α m̂_t / (√v̂_t + ε)
    if (e) e->lerp_(p, 1.0 - decay);                             // ema ← d·ema + (1−d)·θ
  }
}

double ema_decay_at(double decay, int64_t n) {
  return std::min(decay, (1.0 + static_cast<double>(n)) / (10.0 + static_cast<double>(n)));
}

double lr_at(const TrainConfig& t, int64_t step) {
  if (step < t.warmup) return t.lr * static_cast<double>(step + 1) / static_cast<double>(t.warmup);
  if (t.lr_schedule == "constant") return t.lr;
  // Decay over the steps after warm-up, to 0 at step = t.steps (the last update, step t.steps − 1, is just above).
  const double span = static_cast<double>(std::max<int64_t>(t.steps - t.warmup, 1));
  const double p = std::min(1.0, static_cast<double>(step - t.warmup) / span);  // progress in [0, 1]
  if (t.lr_schedule == "cosine") return t.lr * 0.5 * (1.0 + std::cos(M_PI * p));  // Loshchilov & Hutter 2017, no restarts
  return t.lr * (1.0 - p);                                                        // linear
}

}  // namespace ddpm
