// dit.h — the Diffusion Transformer (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers", §3.2
// and Figure 3), one Backbone (backbone.h): model.arch = "dit". The image is cut into p×p patches, linearly
// embedded into N = (H/p)² tokens of width D plus a fixed 2-D sin-cos position embedding, run through `depth`
// DiT blocks (multi-head self-attention and an MLP, each with adaLN-Zero conditioning on c = time embedding +
// class embedding), and a final adaLN layer + linear maps every token back to its p×p×C patch.
//
// Departures from the paper: the output has C channels (fixed variance, no learned Σ); pixels, not VAE latents.
// Parameter names follow the paper's code (facebookresearch/DiT models.py: x_embedder.proj, t_embedder.mlp.0,
// blocks.3.adaLN_modulation.1, final_layer.linear, ...); the fixed position embedding is not a parameter.
// Not here: the diffusion math (schedule.h), sampling (samplers/), training (train/trainer.h), timestep_embedding
// (unet.h, shared with the UNet).
//
// Size legend: B batch, C image channels, H×W image, p patch, N = (H/p)·(W/p) tokens, D = hidden_size,
// h = num_heads, d = D / h head width, M = mlp_ratio·D MLP width.
#pragma once

#include "ddpm/nn/backbone.h"
#include "ddpm/nn/weight_cast.h"
#include "ddpm/util/config.h"

#include <torch/torch.h>

namespace ddpm {

// The fixed 2-D sin-cos position embedding of a g×g grid (MAE / the paper's code): row r = [1-D embedding of the
// token's column (D/2), 1-D embedding of its row (D/2)], each [sin(pos·ω_k), cos(pos·ω_k)] with
// ω_k = 10000^(−k/(D/4)), k = 0 .. D/4 − 1. -> [g·g, D] fp32. D must be a multiple of 4.
torch::Tensor sincos_pos_embed_2d(int64_t D, int64_t grid);

// Multi-head self-attention (Vaswani et al. 2017): softmax(Q Kᵀ / √d) V per head, one qkv projection.
struct DiTAttentionImpl : torch::nn::Module {
  DiTAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, WeightCast& wc);  // [B,N,D] -> [B,N,D], x's dtype
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(DiTAttention);

// The pointwise MLP: Linear(D, M), GELU (tanh approximation, as the paper's code), Linear(M, D).
struct DiTMlpImpl : torch::nn::Module {
  DiTMlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x, WeightCast& wc);  // [B,N,D] -> [B,N,D], x's dtype
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(DiTMlp);

// One DiT block with adaLN-Zero (Figure 3, left): LayerNorm without affine parameters, then scale and shift
// regressed from c, then attention (or the MLP), then a gate α regressed from c on the residual branch. The
// regression is zero-initialised, so α = 0 and the block starts as the identity.
struct DiTBlockImpl : torch::nn::Module {
  DiTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden);
  // x [B,N,D] fp32 (the residual stream), c [B,D] fp32, dt the dtype attention and MLP compute in -> [B,N,D] fp32
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c, torch::ScalarType dt, WeightCast& wc);
  DiTAttention attn{nullptr};
  DiTMlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};  // SiLU, Linear(D, 6D): β₁ γ₁ α₁ β₂ γ₂ α₂ (zero-initialised)
  torch::nn::Linear modulation{nullptr};            // that Linear (adaLN_modulation.1)
};
TORCH_MODULE(DiTBlock);

// The final layer: adaLN (shift and scale from c, no gate) and a linear map of each token to its p·p·C patch,
// both zero-initialised, so the network starts by predicting 0.
struct DiTFinalLayerImpl : torch::nn::Module {
  DiTFinalLayerImpl(int64_t dim, int64_t patch_out);
  // x [B,N,D] fp32, c [B,D] fp32 -> [B,N,p·p·C] in dt
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c, torch::ScalarType dt, WeightCast& wc);
  torch::nn::Linear linear{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};  // SiLU, Linear(D, 2D): shift, scale (zero-initialised)
  torch::nn::Linear modulation{nullptr};            // that Linear (adaLN_modulation.1)
};
TORCH_MODULE(DiTFinalLayer);

struct DiTImpl : BackboneImpl {
  explicit DiTImpl(const ModelConfig& cfg);  // throws unless cfg.arch is "dit" (validate() checks the sizes)
  // x_t [B,C,H,W] (any memory layout), t [B], y [B] int64 labels (class-conditional models only; num_classes is
  // the null label; undefined y = all null) -> [B,C,H,W] fp32 NCHW.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y = {}) override;

  const ModelConfig& config() const override { return cfg_; }
  // bf16: the token activations and the linears' weights (WeightCast) in bf16, LayerNorm statistics, softmax
  // and the conditioning c in fp32. channels_last is irrelevant here (no convolutions).
  void set_compute(ComputeMode m) override { mode_ = m; }
  const ComputeMode& compute() const override { return mode_; }
  double forward_flops_per_image() const override { return flops_; }

  // The first layer: x [B,C,H,W] (any layout) -> tokens [B,N,D] fp32, each p×p patch linearly embedded (the
  // stride-p convolution x_embedder.proj) plus the fixed position embedding; the matmul in dt.
  torch::Tensor patch_embed(const torch::Tensor& x, torch::ScalarType dt);
  // The last step: tokens [B,N,p·p·C] -> the image [B,C,H,W].
  torch::Tensor unpatchify(const torch::Tensor& tokens) const;

  ModelConfig cfg_;
  ComputeMode mode_;
  WeightCast cast_;
  double flops_ = 0;
  int64_t grid_ = 0;  // H / p tokens per side
  torch::Tensor pos_embed_;  // [N,D] fp32, fixed (not a parameter, not in checkpoints); moved to x's device on use
  torch::nn::Conv2d x_proj{nullptr};      // x_embedder.proj: C -> D, kernel p, stride p (applied as one linear map)
  torch::nn::Sequential t_mlp{nullptr};   // t_embedder.mlp: Linear(256, D), SiLU, Linear(D, D)
  torch::nn::ModuleList blocks{nullptr};  // blocks.0 .. blocks.{depth-1}
  DiTFinalLayer final_layer{nullptr};
  torch::nn::Embedding y_table{nullptr};  // y_embedder.embedding_table [num_classes + 1, D], conditional models only
};
TORCH_MODULE(DiT);

}  // namespace ddpm
