// dit.cpp — see dit.h. Equations are the paper's (Peebles & Xie 2023, §3.2); initialisation follows its code
// (facebookresearch/DiT, models.py initialize_weights). Size legend: B batch, C channels, p patch, g = H/p,
// N = g² tokens, D width, h heads, d = D/h, M MLP width.
#include "ddpm/nn/dit.h"

#include "ddpm/nn/attention.h"
#include "ddpm/nn/gelu.h"
#include "ddpm/nn/parallel_mm.h"
#include "ddpm/nn/unet.h"


#include <cmath>
#include <stdexcept>

namespace ddpm {
namespace nn = torch::nn;
namespace {

constexpr int64_t kFreqDim = 256;  // width of the sinusoidal timestep features (the paper's code)
constexpr double kLnEps = 1e-6;

// x wᵀ + b in x's dtype: fp32 spread over the CPU threads (parallel_mm.h), bf16 with the fp32 weights cast
// (weight_cast.h, cached per weight version when no gradient is recorded).
torch::Tensor lin(WeightCast& wc, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (x.scalar_type() == w.scalar_type()) return threaded_linear(x, w, b);
  return wc.linear(x, w, b);
}
torch::Tensor lin(WeightCast& wc, const torch::Tensor& x, const nn::Linear& l) { return lin(wc, x, l->weight, l->bias); }

// Xavier-uniform weights and zero biases (the paper's code initialises every Linear so), or all zeros.
nn::Linear linear(int64_t in, int64_t out, bool zero = false) {
  auto l = nn::Linear(in, out);
  torch::NoGradGuard ng;
  if (zero) l->weight.zero_();
  else nn::init::xavier_uniform_(l->weight);
  l->bias.zero_();
  return l;
}

// LayerNorm over the last dimension without affine parameters (elementwise_affine=False), statistics in fp32.
torch::Tensor layer_norm(const torch::Tensor& x) {  // [B,N,D] -> [B,N,D] fp32
  return torch::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, {}, {}, kLnEps);
}

// adaLN's modulate: x · (1 + γ) + β with γ, β [B,D] regressed from c, broadcast over the tokens.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);  // [B,N,D]
}

}  // namespace

torch::Tensor sincos_pos_embed_2d(int64_t D, int64_t grid) {
  const int64_t q = D / 4;
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto omega = torch::pow(10000.0, -torch::arange(q, f64) / static_cast<double>(q));  // [D/4]
  auto pos = torch::arange(grid, f64);                                                 // [g]
  auto row = pos.repeat_interleave(grid), col = pos.repeat({grid});                    // [N]: token r·g + c
  auto one_d = [&](const torch::Tensor& p) {
    auto a = p.unsqueeze(1) * omega.unsqueeze(0);                                      // [N, D/4]
    return torch::cat({torch::sin(a), torch::cos(a)}, 1);                              // [N, D/2]
  };
  return torch::cat({one_d(col), one_d(row)}, 1).to(torch::kFloat32);                  // [N, D]
}

DiTAttentionImpl::DiTAttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  qkv = register_module("qkv", linear(dim, 3 * dim));
  proj = register_module("proj", linear(dim, dim));
}

torch::Tensor DiTAttentionImpl::forward(const torch::Tensor& x, WeightCast& wc) {
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2), h = heads, d = D / h;
  // Q, K, V for every head from one projection: [B,N,3D] -> 3 × [B,h,N,d].
  auto qkv_t = lin(wc, x, qkv).view({B, N, 3, h, d}).permute({2, 0, 3, 1, 4});  // [3,B,h,N,d]
  auto q = qkv_t[0], k = qkv_t[1], v = qkv_t[2];                                  // [B,h,N,d]
  // Attention(Q, K, V) = softmax(QKᵀ/√d) V (Vaswani et al. 2017, eq. 1), every head at once (attention.h).
  auto o = attention(q.reshape({B * h, N, d}), k.reshape({B * h, N, d}), v.reshape({B * h, N, d}))
               .view({B, h, N, d});  // [B,h,N,d]
  return lin(wc, o.transpose(1, 2).reshape({B, N, D}), proj);  // concat heads [B,N,D], then W_O: [B,N,D]
}

DiTMlpImpl::DiTMlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", linear(dim, hidden));
  fc2 = register_module("fc2", linear(hidden, dim));
}

torch::Tensor DiTMlpImpl::forward(const torch::Tensor& x, WeightCast& wc) {
  auto a = gelu_tanh(lin(wc, x, fc1));  // GELU, tanh form (gelu.h): [B,N,M]
  return lin(wc, a, fc2);                         // [B,N,D]
}

DiTBlockImpl::DiTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden) {
  attn = register_module("attn", DiTAttention(dim, heads));
  mlp = register_module("mlp", DiTMlp(dim, mlp_hidden));
  // adaLN-Zero (§3.2): "we zero-initialize the MLP regressing α", here (as in the paper's code) the whole
  // modulation, so β = γ = α = 0 and the block is the identity function at initialisation.
  modulation = linear(dim, 6 * dim, /*zero=*/true);
  adaLN_modulation = register_module("adaLN_modulation", nn::Sequential(nn::SiLU(), modulation));
}

torch::Tensor DiTBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& c, torch::ScalarType dt,
                                    WeightCast& wc) {
  // (β₁, γ₁, α₁, β₂, γ₂, α₂) = Linear(SiLU(c)): shift, scale and gate of the attention and of the MLP branch.
  auto m = lin(wc, torch::silu(c), modulation).chunk(6, 1);                          // 6 × [B,D] fp32
  // x ← x + α₁ · Attention(LN(x) · (1 + γ₁) + β₁)
  auto a = modulate(layer_norm(x), m[0], m[1]).to(dt);                               // [B,N,D]
  auto h = x + m[2].unsqueeze(1) * attn->forward(a, wc).to(torch::kFloat32);         // [B,N,D] fp32
  // x ← x + α₂ · MLP(LN(x) · (1 + γ₂) + β₂)
  auto b = modulate(layer_norm(h), m[3], m[4]).to(dt);                               // [B,N,D]
  return h + m[5].unsqueeze(1) * mlp->forward(b, wc).to(torch::kFloat32);            // [B,N,D] fp32
}

DiTFinalLayerImpl::DiTFinalLayerImpl(int64_t dim, int64_t patch_out) {
  linear = register_module("linear", ddpm::linear(dim, patch_out, /*zero=*/true));
  modulation = ddpm::linear(dim, 2 * dim, /*zero=*/true);
  adaLN_modulation = register_module("adaLN_modulation", nn::Sequential(nn::SiLU(), modulation));
}

torch::Tensor DiTFinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& c, torch::ScalarType dt,
                                         WeightCast& wc) {
  auto m = lin(wc, torch::silu(c), modulation).chunk(2, 1);                          // shift, scale [B,D] fp32
  return lin(wc, modulate(layer_norm(x), m[0], m[1]).to(dt), linear);                // [B,N,p·p·C]
}

DiTImpl::DiTImpl(const ModelConfig& cfg) : cfg_(cfg) {
  if (cfg.arch != "dit") throw std::runtime_error("a DiT cannot be built from model.arch = '" + cfg.arch + "'");
  const int64_t C = cfg.channels, p = cfg.patch_size, D = cfg.hidden_size, K = cfg.num_classes;
  if (p <= 0 || cfg.image_size % p != 0 || D % 4 != 0 || cfg.num_heads <= 0 || D % cfg.num_heads != 0)
    throw std::runtime_error("DiT: invalid sizes (image_size " + std::to_string(cfg.image_size) + ", patch_size " +
                             std::to_string(p) + ", hidden_size " + std::to_string(D) + ", num_heads " +
                             std::to_string(cfg.num_heads) + ")");
  grid_ = cfg.image_size / p;
  const int64_t N = grid_ * grid_, P = p * p * C, M = std::llround(static_cast<double>(D) * cfg.mlp_ratio);
  pos_embed_ = sincos_pos_embed_2d(D, grid_);  // [N,D]

  // Patch embedding: Conv2d(C, D, p, stride p), Xavier-uniform over its [D, C·p·p] matrix, zero bias.
  auto xe = register_module("x_embedder", std::make_shared<nn::Module>());
  x_proj = xe->register_module("proj", nn::Conv2d(nn::Conv2dOptions(C, D, p).stride(p)));
  {
    torch::NoGradGuard ng;
    nn::init::xavier_uniform_(x_proj->weight.view({D, -1}));
    x_proj->bias.zero_();
  }
  // Timestep embedding: sinusoidal features of t, then Linear, SiLU, Linear; weights N(0, 0.02²).
  auto te = register_module("t_embedder", std::make_shared<nn::Module>());
  auto t0 = linear(kFreqDim, D), t2 = linear(D, D);
  {
    torch::NoGradGuard ng;
    t0->weight.normal_(0.0, 0.02);
    t2->weight.normal_(0.0, 0.02);
  }
  t_mlp = te->register_module("mlp", nn::Sequential(t0, nn::SiLU(), t2));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < cfg.depth; ++i) blocks->push_back(DiTBlock(D, cfg.num_heads, M));
  final_layer = register_module("final_layer", DiTFinalLayer(D, P));
  // Class embedding (§3.2: adaLN regresses its parameters from the sum of the embeddings of t and of the class):
  // one row per class and the null row ∅ = num_classes for classifier-free guidance, N(0, 0.02²) as in the code,
  // the null row zero (as the UNet's: a model fine-tuned from unconditional weights starts as it was).
  // Registered last, so a class-conditional model's other weights are initialised as the unconditional one's.
  if (K > 0) {
    auto ye = register_module("y_embedder", std::make_shared<nn::Module>());
    y_table = ye->register_module("embedding_table", nn::Embedding(K + 1, D));
    torch::NoGradGuard ng;
    y_table->weight.normal_(0.0, 0.02);
    y_table->weight[K].zero_();
  }

  // FLOPs of one image, 2 per multiply-add, as the forward pass below runs them.
  const double Dd = static_cast<double>(D), Nd = static_cast<double>(N);
  flops_ = 2.0 * Nd * P * Dd;                                   // patch embedding
  flops_ += 2.0 * (kFreqDim * Dd + Dd * Dd);                     // timestep MLP
  const double block = 2.0 * 6 * Dd * Dd                         // adaLN modulation (once per image)
                       + Nd * (2.0 * 3 * Dd * Dd + 2.0 * Dd * Dd + 2.0 * 2 * M * Dd)  // qkv, proj, fc1 + fc2
                       + 2.0 * 2 * Nd * Nd * Dd;                 // QKᵀ and AV over all heads
  flops_ += static_cast<double>(cfg.depth) * block;
  flops_ += 2.0 * 2 * Dd * Dd + 2.0 * Nd * Dd * P;               // final adaLN and linear
}

torch::Tensor DiTImpl::patch_embed(const torch::Tensor& x, torch::ScalarType dt) {
  const int64_t B = x.size(0), C = cfg_.channels, p = cfg_.patch_size, g = grid_, D = cfg_.hidden_size;
  // Patchify (§3.2, Figure 4): each p×p patch, flattened in (channel, i, j) order as the conv weight [D,C,p,p],
  // times that weight: the stride-p convolution as one linear map. Inputs of any layout (NHWC included).
  auto patches = x.to(torch::kFloat32).contiguous().view({B, C, g, p, g, p}).permute({0, 2, 4, 1, 3, 5});
  auto tokens = patches.reshape({B, g * g, C * p * p}).to(dt);                              // [B,N,C·p·p]
  auto w = dt == torch::kFloat32 ? x_proj->weight : cast_.cast(x_proj->weight, dt, false);  // [D,C,p,p]
  auto bias = dt == torch::kFloat32 ? x_proj->bias : cast_.cast(x_proj->bias, dt, false);   // [D]
  // The position embedding lives outside the module's tensors: moved to the input's device on first use.
  if (pos_embed_.device() != x.device()) pos_embed_ = pos_embed_.to(x.device());
  return lin(cast_, tokens, w.reshape({D, C * p * p}), bias).to(torch::kFloat32) + pos_embed_;  // [B,N,D] fp32
}

torch::Tensor DiTImpl::unpatchify(const torch::Tensor& tokens) const {
  const int64_t B = tokens.size(0), C = cfg_.channels, p = cfg_.patch_size, g = grid_;
  // Token (r, c) holds its patch as (i, j, channel), the paper's code's order: [B,g,g,p,p,C] -> [B,C,g,p,g,p].
  return tokens.reshape({B, g, g, p, p, C}).permute({0, 5, 1, 3, 2, 4}).reshape({B, C, g * p, g * p});
}

torch::Tensor DiTImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == cfg_.channels && x.size(2) == cfg_.image_size &&
                  x.size(3) == cfg_.image_size,
              "DiT expects input [B, ", cfg_.channels, ", ", cfg_.image_size, ", ", cfg_.image_size, "], got ",
              x.sizes());
  TORCH_CHECK(t.dim() == 1 && t.size(0) == x.size(0), "DiT expects t of shape [B], got ", t.sizes());
  const int64_t B = x.size(0);
  const auto dt = compute_dtype(mode_.precision);

  // Conditioning c (§3.2): the timestep embedding, plus the class embedding of a class-conditional model.
  auto c = t_mlp->forward(timestep_embedding(t, kFreqDim));                               // [B,D] fp32
  if (y_table) {
    auto labels = y.defined() ? y : torch::full({B}, cfg_.num_classes, t.options().dtype(torch::kLong));
    TORCH_CHECK(labels.dim() == 1 && labels.size(0) == B, "DiT expects labels of shape [B], got ", labels.sizes());
    c = c + y_table(labels.to(torch::kLong));                                              // [B,D]
  } else {
    TORCH_CHECK(!y.defined(), "this model is unconditional (num_classes = 0) but labels were given");
  }

  auto h = patch_embed(x, dt);                                                             // [B,N,D] fp32
  for (const auto& block : *blocks) h = block->as<DiTBlockImpl>()->forward(h, c, dt, cast_);     // [B,N,D]
  auto out = final_layer->forward(h, c, dt, cast_);                                        // [B,N,p·p·C]
  return unpatchify(out.to(torch::kFloat32)).contiguous();                                 // [B,C,H,W] fp32 NCHW
}

}  // namespace ddpm
