// backbone.h — the one interface every noise-prediction network implements (the UNet, unet.h; the DiT, dit.h),
// and the factory that builds the one a config names (model.arch). The trainer, the checkpoints, the samplers,
// the restoration verbs and the server hold a Backbone and never know which network it is.
// Not here: the networks themselves, the diffusion math (schedule.h), what the output means (prediction.h).
#pragma once

#include "ddpm/nn/precision.h"
#include "ddpm/util/config.h"

#include <torch/torch.h>

#include <memory>
#include <type_traits>

namespace ddpm {

// How a network computes (set on the network; samplers and the trainer never see it). Parameters stay fp32
// either way. channels_last: NHWC activations on the CPU (oneDNN's NHWC convolutions are 2-4× faster than NCHW
// here, and the fused GroupNorm kernels need it); a network without convolutions may ignore it.
struct ComputeMode {
  Precision precision = Precision::fp32;
  bool channels_last = false;
};

// The compute mode for a precision on a device: NHWC on the CPU, NCHW on other devices (cuDNN picks its own).
ComputeMode compute_mode_for(Precision p, const torch::Device& device);

// ε_θ(x_t, t, y) behind one interface. Parameter names are the network's own (a checkpoint is loaded by name
// into the network its config builds).
struct BackboneImpl : torch::nn::Module {
  // x_t [B,C,H,W] (any memory layout), t [B] (integer or float timesteps), y [B] int64 class labels
  // (class-conditional models only; label num_classes is the null label of classifier-free guidance; undefined
  // y = all null) -> [B,C,H,W] fp32 NCHW, the network's prediction (ε, x_0 or v: see prediction.h).
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y = {}) = 0;
  virtual const ModelConfig& config() const = 0;
  // Precision and layout of the forward pass (default fp32, NCHW). bf16 activations inside, fp32 out.
  virtual void set_compute(ComputeMode m) = 0;
  virtual const ComputeMode& compute() const = 0;
  // Forward-pass floating-point operations for one image (2 per multiply-add: convolutions, linears, attention).
  virtual double forward_flops_per_image() const = 0;
};

// The holder (LibTorch's ModuleHolder idiom, as TORCH_MODULE writes it), which any concrete backbone's holder
// (UNet, DiT) converts to, sharing the module: `Backbone b = unet;`.
class Backbone : public torch::nn::ModuleHolder<BackboneImpl> {
 public:
  using torch::nn::ModuleHolder<BackboneImpl>::get;
  Backbone(std::nullptr_t) : ModuleHolder(nullptr) {}  // NOLINT: implicit, as ModuleHolder's
  Backbone(std::shared_ptr<BackboneImpl> m) : ModuleHolder(std::move(m)) {}  // NOLINT
  template <class Impl, std::enable_if_t<std::is_base_of_v<BackboneImpl, Impl>, int> = 0>
  Backbone(const torch::nn::ModuleHolder<Impl>& m)  // NOLINT
      : ModuleHolder(std::shared_ptr<BackboneImpl>(m.ptr())) {}
};

// The network model.arch names ("unet" | "dit"), freshly initialised from the current torch seed. Throws on an
// unknown arch (validate() names the valid ones first).
Backbone make_backbone(const ModelConfig& cfg);

int64_t count_parameters(torch::nn::Module& m);

}  // namespace ddpm
