// unet.h — the DDPM noise-prediction network ε_θ(x_t, t) (Ho et al. 2020, Appendix B; the PixelCNN++-style
// UNet of the original TensorFlow code). Modules follow the LibTorch idiom FooImpl + TORCH_MODULE(Foo), and
// parameter names follow the original layout (down.0.block.1.conv1.weight, mid.attn_1.q.weight, ...).
// UNetImpl is one Backbone (backbone.h): model.arch = "unet".
// Not here: the diffusion math (schedule.h), sampling (samplers/), training (train/trainer.h).
//
// Size legend: B batch, C channels, H×W spatial, D = 4·ch time-embedding width, N = H·W tokens.
#pragma once

#include "ddpm/nn/backbone.h"
#include "ddpm/nn/precision.h"
#include "ddpm/nn/weight_cast.h"
#include "ddpm/util/config.h"

#include <torch/torch.h>


namespace ddpm {

// Sinusoidal embedding of (float) timesteps, as in Transformer / DDPM: [B] -> [B, dim].
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim);

struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int64_t in_ch, int64_t out_ch, int64_t temb_ch, double dropout);
  // [B,Cin,H,W] (fp32 or bf16, NCHW or NHWC), [B,D] fp32 -> [B,Cout,H,W] of x's dtype and layout
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb, WeightCast& wc);
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, nin_shortcut{nullptr};
  torch::nn::Linear temb_proj{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(ResBlock);

struct AttnBlockImpl : torch::nn::Module {
  explicit AttnBlockImpl(int64_t ch);
  torch::Tensor forward(const torch::Tensor& x, WeightCast& wc);  // [B,C,H,W] -> [B,C,H,W], x's dtype and layout
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(AttnBlock);

struct UNetImpl : BackboneImpl {
  explicit UNetImpl(const ModelConfig& cfg);  // throws unless cfg.arch is "unet"
  // x_t [B,C,H,W], t [B] (integer or float timesteps), y [B] int64 class labels (class-conditional models only;
  // label num_classes is the null label of classifier-free guidance; undefined y = all null) -> [B,C,H,W], the
  // network's prediction (ε, x_0 or v: see prediction.h).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y = {}) override;

  const ModelConfig& config() const override { return cfg_; }
  // Precision and layout of the forward pass (default fp32, NCHW). bf16 activations in, fp32 out.
  void set_compute(ComputeMode m) override { mode_ = m; }
  const ComputeMode& compute() const override { return mode_; }
  // Forward-pass floating-point operations for one image (2 per multiply-add; convs, linears, attention).
  double forward_flops_per_image() const override { return flops_; }

  ModelConfig cfg_;
  ComputeMode mode_;
  WeightCast cast_;
  double flops_ = 0;
  torch::nn::Linear temb_dense0{nullptr}, temb_dense1{nullptr};
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down{nullptr}, up{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
  ResBlock mid_block_1{nullptr}, mid_block_2{nullptr};
  AttnBlock mid_attn_1{nullptr};
  torch::nn::Embedding label_emb{nullptr};  // [num_classes + 1, D], class-conditional models only
};
TORCH_MODULE(UNet);

}  // namespace ddpm
