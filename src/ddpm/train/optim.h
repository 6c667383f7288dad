// optim.h — the optimiser side of training: Adam (Kingma & Ba 2015, Algorithm 1), the learning-rate warm-up and
// the EMA decay schedule. Plain functions of the step, no hidden state beyond Adam's named moment tensors.
// On the CPU the update of each parameter — gradient scaling (clipping), both moments, the weight and its EMA —
// is one pass over memory (LibTorch ops take seven passes and a temporary per parameter: ~20% of an fmnist
// training step on 2 cores).
// Not here: the training step (trainer.h), checkpoints (io/).
#pragma once

#include "ddpm/util/config.h"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace ddpm {

// Adam (Kingma & Ba 2015, Algorithm 1) with bias correction, PyTorch's defaults β = (0.9, 0.999), ε = 1e-8.
// Written out so that its whole state is plain named tensors in the checkpoint.
class Adam {
 public:
  explicit Adam(std::vector<torch::Tensor> params, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  void step(double lr) { step(lr, 1.0, nullptr, 1.0); }  // uses p.grad()
  // The same with the gradient multiplied by grad_scale first (clipping), then, if `ema` is given (one tensor per
  // parameter), ema ← decay·ema + (1 − decay)·θ with the updated θ.
  void step(double lr, double grad_scale, std::vector<torch::Tensor>* ema, double decay);
  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  std::vector<torch::Tensor>& exp_avg() { return m_; }
  std::vector<torch::Tensor>& exp_avg_sq() { return v_; }

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  double beta1_, beta2_, eps_;
  int64_t t_ = 0;
};

// EMA decay at update n (0-based) with warm-up: min(decay, (1 + n) / (10 + n)).
double ema_decay_at(double decay, int64_t n);
// Learning rate at step s: lr · (s + 1) / warmup during warm-up, then lr (constant), or decaying to 0 at
// s = steps as lr · ½(1 + cos πp) (cosine) or lr · (1 − p) (linear), p = (s − warmup) / (steps − warmup).
double lr_at(const TrainConfig& t, int64_t step);

}  // namespace ddpm
