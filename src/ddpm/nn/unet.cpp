// unet.cpp — see unet.h. Size legend: B batch, C channels, H×W spatial, D time-embedding width, N = H·W.
#include "ddpm/nn/unet.h"

#include "ddpm/nn/attention.h"
#include "ddpm/nn/dropout.h"
#include "ddpm/nn/group_norm_silu.h"
#include "ddpm/nn/parallel_mm.h"


#include <cmath>
#include <stdexcept>

namespace ddpm {
namespace nn = torch::nn;
namespace {

// DDPM's initialiser: variance scaling, fan_avg, uniform (TF's default_init). scale 1e-10 on the layers that
// end a residual branch and on the output conv, so each block starts close to the identity, as in the paper's
// code (not exactly zero: gradients must still reach every parameter from the first step).
void init_layer(torch::Tensor weight, torch::Tensor bias, double scale) {
  torch::NoGradGuard ng;
  const int64_t receptive = weight.dim() > 2 ? weight[0][0].numel() : 1;
  const double fan_in = static_cast<double>(weight.size(1) * receptive);
  const double fan_out = static_cast<double>(weight.size(0) * receptive);
  const double limit = std::sqrt(3.0 * scale / ((fan_in + fan_out) / 2.0));
  weight.uniform_(-limit, limit);
  if (bias.defined()) bias.zero_();
}

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, double scale = 1.0) {
  auto c = nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2));
  init_layer(c->weight, c->bias, scale);
  return c;
}

nn::Linear linear(int64_t in, int64_t out, double scale = 1.0) {
  auto l = nn::Linear(in, out);
  init_layer(l->weight, l->bias, scale);
  return l;
}

nn::GroupNorm group_norm(int64_t ch) { return nn::GroupNorm(nn::GroupNormOptions(32, ch).eps(1e-6)); }

// SiLU; in place when no gradient is recorded (sampling), which saves an allocation per activation.
torch::Tensor act(torch::Tensor x) { return torch::GradMode::is_enabled() ? torch::silu(x) : torch::silu_(x); }

// silu(GroupNorm(x + add)) (add [B,C] or undefined), or without the SiLU: fused kernels for NHWC on the CPU
// (group_norm_silu.h); NCHW fp32 keeps LibTorch's GroupNorm, bit for bit the network as it always was.
torch::Tensor norm_act(nn::GroupNorm n, const torch::Tensor& x, const torch::Tensor& add, bool silu) {
  if (!group_norm_silu_fused(x) && x.scalar_type() == torch::kFloat32) {
    auto z = add.defined() ? x + add.unsqueeze(-1).unsqueeze(-1) : x;  // [B,C,H,W]
    return silu ? act(n(z)) : n(z);
  }
  return group_norm_silu(x, add, n->weight, n->bias, n->options.num_groups(), n->options.eps(), silu);
}

double conv_flops(int64_t hw, int64_t in, int64_t out, int64_t k) { return 2.0 * hw * in * out * k * k; }

// One resolution level of the encoder or decoder: its ResBlocks, attention after each (if any), and the
// resampling conv (stride-2 down, or nearest ×2 up followed by a 3×3 conv).
struct LevelImpl : nn::Module {
  nn::ModuleList block{nn::ModuleList()}, attn{nn::ModuleList()};
  nn::Conv2d resample{nullptr};
  LevelImpl() {
    register_module("block", block);
    register_module("attn", attn);
  }
};
TORCH_MODULE(Level);

}  // namespace

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim) {
  // DDPM get_timestep_embedding: emb_i = t · exp(−log(10000) · i / (half − 1)), then [sin, cos].
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  auto freqs = torch::exp(torch::arange(half, opts) * (-std::log(10000.0) / static_cast<double>(half - 1)));  // [half]
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);  // [B, half]
  auto emb = torch::cat({torch::sin(args), torch::cos(args)}, 1);        // [B, 2·half]
  if (dim % 2 == 1) emb = torch::nn::functional::pad(emb, torch::nn::functional::PadFuncOptions({0, 1}));
  return emb;  // [B, dim]
}

ResBlockImpl::ResBlockImpl(int64_t in_ch, int64_t out_ch, int64_t temb_ch, double dropout) {
  norm1 = register_module("norm1", group_norm(in_ch));
  conv1 = register_module("conv1", conv(in_ch, out_ch, 3));
  temb_proj = register_module("temb_proj", linear(temb_ch, out_ch));
  norm2 = register_module("norm2", group_norm(out_ch));
  drop = register_module("dropout", nn::Dropout(dropout));
  conv2 = register_module("conv2", conv(out_ch, out_ch, 3, 1, 1e-10));
  if (in_ch != out_ch) nin_shortcut = register_module("nin_shortcut", conv(in_ch, out_ch, 1));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb, WeightCast& wc) {
  auto h = wc.conv(conv1, norm_act(norm1, x, {}, true));                // [B,Cout,H,W]
  auto e = temb_proj(torch::silu(temb));                                // [B,Cout] fp32, added before norm2
  h = norm_act(norm2, h, e, true);                                      // [B,Cout,H,W]
  h = wc.conv(conv2, hashed_dropout(h, drop->options.p(), is_training()));
  return (nin_shortcut ? wc.conv(nin_shortcut, x) : x) + h;             // [B,Cout,H,W]
}

AttnBlockImpl::AttnBlockImpl(int64_t ch) {
  norm = register_module("norm", group_norm(ch));
  q = register_module("q", conv(ch, ch, 1));
  k = register_module("k", conv(ch, ch, 1));
  v = register_module("v", conv(ch, ch, 1));
  proj_out = register_module("proj_out", conv(ch, ch, 1, 1, 1e-10));
}

torch::Tensor AttnBlockImpl::forward(const torch::Tensor& x, WeightCast& wc) {
  const auto B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous()) {
    // NHWC: Q, K and V are one 1×1 convolution (oneDNN, all threads) whose NHWC output is already [B,N,3C] in
    // memory, and the attention output [B,N,C] is NHWC again: no transposes.
    auto h = norm_act(norm, x, {}, false);                                                 // [B,C,H,W] NHWC
    auto w_qkv = torch::cat({q->weight, k->weight, v->weight}, 0);                         // [3C,C,1,1]
    auto b_qkv = torch::cat({q->bias, k->bias, v->bias}, 0);                               // [3C]
    auto qkv = wc.conv_with(h, w_qkv, b_qkv).permute({0, 2, 3, 1}).reshape({B, H * W, 3 * C});  // [B,N,3C]
    auto qt = qkv.slice(2, 0, C), kt = qkv.slice(2, C, 2 * C), vt = qkv.slice(2, 2 * C);    // [B,N,C] each
    auto o = attention(qt, kt, vt);                                                        // [B,N,C]
    auto o4 = o.reshape({B, H, W, C}).permute({0, 3, 1, 2});                               // [B,C,H,W] NHWC
    return x + wc.conv(proj_out, o4);
  }
  auto h = norm_act(norm, x, {}, false);
  auto qt = wc.conv(q, h).reshape({B, C, H * W}).transpose(1, 2);  // [B,N,C]
  auto kt = wc.conv(k, h).reshape({B, C, H * W}).transpose(1, 2);  // [B,N,C]
  auto vt = wc.conv(v, h).reshape({B, C, H * W}).transpose(1, 2);  // [B,N,C]
  auto o = attention(qt, kt, vt);  // softmax(QKᵀ/√C) V (attention.h): [B,N,C]
  o = o.transpose(1, 2).reshape({B, C, H, W});  // [B,C,H,W]
  return x + wc.conv(proj_out, o);
}

UNetImpl::UNetImpl(const ModelConfig& cfg) : cfg_(cfg) {
  if (cfg.arch != "unet") throw std::runtime_error("a UNet cannot be built from model.arch = '" + cfg.arch + "'");
  const int64_t ch = cfg.ch, temb_ch = 4 * ch, L = static_cast<int64_t>(cfg.ch_mult.size());
  auto has_attn = [&](int64_t res) {
    for (auto r : cfg.attn_resolutions)
      if (r == res) return true;
    return false;
  };
  // FLOP bookkeeping mirrors the forward pass below.
  auto res_flops = [&](int64_t res, int64_t in, int64_t out) {
    const int64_t hw = res * res;
    flops_ += conv_flops(hw, in, out, 3) + conv_flops(hw, out, out, 3) + 2.0 * temb_ch * out;
    if (in != out) flops_ += conv_flops(hw, in, out, 1);
  };
  auto attn_flops = [&](int64_t res, int64_t c) {
    const double n = static_cast<double>(res * res);
    flops_ += 4 * conv_flops(res * res, c, c, 1) + 2 * (2.0 * n * n * c);
  };

  temb_dense0 = register_module("temb_dense0", linear(ch, temb_ch));
  temb_dense1 = register_module("temb_dense1", linear(temb_ch, temb_ch));
  flops_ += 2.0 * ch * temb_ch + 2.0 * temb_ch * temb_ch;
  conv_in = register_module("conv_in", conv(cfg.channels, ch, 3));
  int64_t res = cfg.image_size;
  flops_ += conv_flops(res * res, cfg.channels, ch, 3);

  // Encoder: remember the width of every skip connection.
  std::vector<int64_t> skip_ch{ch};
  int64_t cur = ch;
  down = register_module("down", nn::ModuleList());
  for (int64_t i = 0; i < L; ++i) {
    Level level;
    const int64_t out = ch * cfg.ch_mult[i];
    for (int64_t j = 0; j < cfg.num_res_blocks; ++j) {
      level->block->push_back(ResBlock(cur, out, temb_ch, cfg.dropout));
      res_flops(res, cur, out);
      cur = out;
      if (has_attn(res)) {
        level->attn->push_back(AttnBlock(cur));
        attn_flops(res, cur);
      }
      skip_ch.push_back(cur);
    }
    if (i != L - 1) {
      level->resample = level->register_module("downsample", conv(cur, cur, 3, 2));
      res /= 2;
      flops_ += conv_flops(res * res, cur, cur, 3);
      skip_ch.push_back(cur);
    }
    down->push_back(level);
  }

  mid_block_1 = register_module("mid_block_1", ResBlock(cur, cur, temb_ch, cfg.dropout));
  mid_attn_1 = register_module("mid_attn_1", AttnBlock(cur));
  mid_block_2 = register_module("mid_block_2", ResBlock(cur, cur, temb_ch, cfg.dropout));
  res_flops(res, cur, cur);
  attn_flops(res, cur);
  res_flops(res, cur, cur);

  // Decoder: num_res_blocks + 1 ResBlocks per level, each eating one skip connection. up[i] is level i, built
  // from the deepest level upwards, so up.0 is the full-resolution level as in the original naming.
  std::vector<Level> up_levels(L);
  for (int64_t i = L - 1; i >= 0; --i) {
    Level level;
    const int64_t out = ch * cfg.ch_mult[i];
    for (int64_t j = 0; j < cfg.num_res_blocks + 1; ++j) {
      const int64_t skip = skip_ch.back();
      skip_ch.pop_back();
      level->block->push_back(ResBlock(cur + skip, out, temb_ch, cfg.dropout));
      res_flops(res, cur + skip, out);
      cur = out;
      if (has_attn(res)) {
        level->attn->push_back(AttnBlock(cur));
        attn_flops(res, cur);
      }
    }
    if (i != 0) {
      level->resample = level->register_module("upsample", conv(cur, cur, 3));
      res *= 2;
      flops_ += conv_flops(res * res, cur, cur, 3);
    }
    up_levels[i] = level;
  }
  up = register_module("up", nn::ModuleList());
  for (auto& l : up_levels) up->push_back(l);

  norm_out = register_module("norm_out", group_norm(cur));
  conv_out = register_module("conv_out", conv(cur, cfg.channels, 3, 1, 1e-10));
  // Registered last, so a class-conditional model's other weights are initialised as the unconditional one's.
  // Class rows N(0, 1) (the Embedding default, as in guided-diffusion): from the first step each class adds a
  // vector as large as the time embedding itself. (Zero-initialised rows had learned classes only weakly after
  // 1,300 fine-tuning steps: Adam moves them by about lr per step in a direction that is mostly noise.) The null
  // row ∅ starts at zero, so ε(x, ∅) of a model fine-tuned from unconditional weights (`ddpm train --init`)
  // starts exactly as the old model.
  if (cfg.num_classes > 0) {
    label_emb = register_module("label_emb", nn::Embedding(cfg.num_classes + 1, temb_ch));
    torch::NoGradGuard ng;
    label_emb->weight.normal_(0.0, 1.0);
    label_emb->weight[cfg.num_classes].zero_();
  }
  flops_ += conv_flops(res * res, cur, cfg.channels, 3);
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == cfg_.channels && x.size(2) == cfg_.image_size &&
                  x.size(3) == cfg_.image_size,
              "UNet expects input [B, ", cfg_.channels, ", ", cfg_.image_size, ", ", cfg_.image_size, "], got ",
              x.sizes());
  TORCH_CHECK(t.dim() == 1 && t.size(0) == x.size(0), "UNet expects t of shape [B], got ", t.sizes());
  const int64_t L = static_cast<int64_t>(cfg_.ch_mult.size());

  auto temb = timestep_embedding(t, cfg_.ch);             // [B, ch]
  temb = temb_dense1(torch::silu(temb_dense0(temb)));     // [B, D]
  if (label_emb) {
    // Class conditioning (Ho & Salimans 2022; guided-diffusion's label_emb): a learned vector per class, added to
    // the time embedding. Row num_classes is the null label ∅ that label dropout trains.
    auto labels = y.defined() ? y : torch::full({x.size(0)}, cfg_.num_classes, t.options().dtype(torch::kLong));
    TORCH_CHECK(labels.dim() == 1 && labels.size(0) == x.size(0), "UNet expects labels of shape [B], got ",
                labels.sizes());
    temb = temb + label_emb(labels.to(torch::kLong));     // [B, D]
  } else {
    TORCH_CHECK(!y.defined(), "this model is unconditional (num_classes = 0) but labels were given");
  }

  // Activations in the compute dtype and layout; the time embedding stays fp32 (it is [B, D], nothing to gain).
  auto xin = x.to(compute_dtype(mode_.precision));        // [B, C, H, W]
  if (mode_.channels_last && x.device().is_cpu()) xin = xin.contiguous(at::MemoryFormat::ChannelsLast);
  auto h0 = cast_.conv(conv_in, xin);                       // [B, ch, H, W]
  // A one-channel image is as much NCHW as NHWC, so oneDNN returns NCHW here; from this map on (C > 1) every
  // op keeps the layout of its input.
  if (mode_.channels_last && x.device().is_cpu()) h0 = h0.contiguous(at::MemoryFormat::ChannelsLast);
  std::vector<torch::Tensor> hs{h0};
  for (int64_t i = 0; i < L; ++i) {
    auto* level = down[i]->as<LevelImpl>();
    for (int64_t j = 0; j < cfg_.num_res_blocks; ++j) {
      auto h = level->block[j]->as<ResBlockImpl>()->forward(hs.back(), temb, cast_);
      if (!level->attn->is_empty()) h = level->attn[j]->as<AttnBlockImpl>()->forward(h, cast_);
      hs.push_back(h);
    }
    if (level->resample) hs.push_back(cast_.conv(level->resample, hs.back()));  // [B, C, H/2, W/2]
  }

  auto h = mid_block_1->forward(hs.back(), temb, cast_);
  h = mid_attn_1->forward(h, cast_);
  h = mid_block_2->forward(h, temb, cast_);

  for (int64_t i = L - 1; i >= 0; --i) {
    auto* level = up[i]->as<LevelImpl>();
    for (int64_t j = 0; j < cfg_.num_res_blocks + 1; ++j) {
      h = level->block[j]->as<ResBlockImpl>()->forward(torch::cat({h, hs.back()}, 1), temb, cast_);
      hs.pop_back();
      if (!level->attn->is_empty()) h = level->attn[j]->as<AttnBlockImpl>()->forward(h, cast_);
    }
    if (level->resample) {
      h = torch::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2});  // [B, C, 2H, 2W]
      h = cast_.conv(level->resample, h);
    }
  }
  auto out = cast_.conv(conv_out, norm_act(norm_out, h, {}, true));  // [B, C_img, H, W]
  return out.to(torch::kFloat32).contiguous();                        // fp32, NCHW whatever the compute mode
}

}  // namespace ddpm
