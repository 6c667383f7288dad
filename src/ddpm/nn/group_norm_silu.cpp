// group_norm_silu.cpp — see group_norm_silu.h: the autograd wrapper around group_norm_kernel.h, parallel over
// the batch (one image per task; per-image parameter-gradient sums reduced in batch order, so results do not
// depend on the thread count).
#include "ddpm/nn/group_norm_silu.h"

#include "ddpm/nn/group_norm_kernel.h"

#include <ATen/Parallel.h>

namespace ddpm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

kernels::GroupNormShape shape_of(const torch::Tensor& x, int64_t groups, double eps, bool silu) {
  kernels::GroupNormShape s;
  s.P = x.size(2) * x.size(3);
  s.C = x.size(1);
  s.G = groups;
  s.eps = static_cast<float>(eps);
  s.silu = silu;
  return s;
}

template <typename T>
T* ptr(const torch::Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}

struct GroupNormSiLUFn : torch::autograd::Function<GroupNormSiLUFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& add_in,
                               const torch::Tensor& gamma_in, const torch::Tensor& beta_in, int64_t groups, double eps,
                               bool silu) {
    const auto x = x_in.contiguous(at::MemoryFormat::ChannelsLast);  // [B,C,H,W] as [B,P,C]
    // No add: an empty tensor (LibTorch 1.13's custom functions do not take undefined inputs).
    const bool has_add = add_in.numel() > 0;
    const auto add = has_add ? add_in.to(torch::kFloat32).contiguous() : torch::Tensor();  // [B,C]
    const auto gamma = gamma_in.to(torch::kFloat32).contiguous(), beta = beta_in.to(torch::kFloat32).contiguous();
    const auto s = shape_of(x, groups, eps, silu);
    const int64_t B = x.size(0);
    auto y = torch::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
    auto mean = torch::empty({B, groups}, x.options().dtype(torch::kFloat32));  // [B,G]
    auto rstd = torch::empty({B, groups}, x.options().dtype(torch::kFloat32));  // [B,G]
    const bool bf16 = x.scalar_type() == torch::kBFloat16;
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const float* a = add.defined() ? ptr<float>(add) + b * s.C : nullptr;
        if (bf16)
          kernels::group_norm_forward(ptr<uint16_t>(x) + b * s.P * s.C, a, ptr<float>(gamma), ptr<float>(beta),
                                      ptr<uint16_t>(y) + b * s.P * s.C, ptr<float>(mean) + b * groups,
                                      ptr<float>(rstd) + b * groups, s);
        else
          kernels::group_norm_forward(ptr<float>(x) + b * s.P * s.C, a, ptr<float>(gamma), ptr<float>(beta),
                                      ptr<float>(y) + b * s.P * s.C, ptr<float>(mean) + b * groups,
                                      ptr<float>(rstd) + b * groups, s);
      }
    });
    ctx->save_for_backward({x, has_add ? add : torch::zeros({0}), gamma, beta, mean, rstd});
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["silu"] = silu;
    ctx->saved_data["has_add"] = has_add;
    ctx->saved_data["add_dtype"] = static_cast<int64_t>(add_in.scalar_type());
    ctx->saved_data["gamma_dtype"] = static_cast<int64_t>(gamma_in.scalar_type());
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const bool has_add = ctx->saved_data["has_add"].toBool();
    const auto& add = saved[1];
    const auto &gamma = saved[2], &beta = saved[3], &mean = saved[4], &rstd = saved[5];
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const auto s = shape_of(x, groups, ctx->saved_data["eps"].toDouble(), ctx->saved_data["silu"].toBool());
    const auto dy = grads[0].to(x.scalar_type()).contiguous(at::MemoryFormat::ChannelsLast);  // [B,C,H,W]
    const int64_t B = x.size(0);
    auto dx = torch::empty_like(x, x.options(), at::MemoryFormat::ChannelsLast);
    auto f32 = x.options().dtype(torch::kFloat32);
    auto dadd = has_add ? torch::empty({B, s.C}, f32) : torch::Tensor();  // [B,C]
    auto dgamma_b = torch::empty({B, s.C}, f32), dbeta_b = torch::empty({B, s.C}, f32);  // [B,C] per image
    const bool bf16 = x.scalar_type() == torch::kBFloat16;
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<float> scratch(static_cast<size_t>(s.P * s.C));
      for (int64_t b = b0; b < b1; ++b) {
        const float* a = has_add ? ptr<float>(add) + b * s.C : nullptr;
        float* da = has_add ? ptr<float>(dadd) + b * s.C : nullptr;
        const int64_t off = b * s.P * s.C;
        if (bf16)
          kernels::group_norm_backward(ptr<uint16_t>(x) + off, ptr<uint16_t>(dy) + off, a, ptr<float>(gamma),
                                       ptr<float>(beta), ptr<float>(mean) + b * groups, ptr<float>(rstd) + b * groups,
                                       ptr<uint16_t>(dx) + off, da, ptr<float>(dgamma_b) + b * s.C,
                                       ptr<float>(dbeta_b) + b * s.C, scratch.data(), s);
        else
          kernels::group_norm_backward(ptr<float>(x) + off, ptr<float>(dy) + off, a, ptr<float>(gamma),
                                       ptr<float>(beta), ptr<float>(mean) + b * groups, ptr<float>(rstd) + b * groups,
                                       ptr<float>(dx) + off, da, ptr<float>(dgamma_b) + b * s.C,
                                       ptr<float>(dbeta_b) + b * s.C, scratch.data(), s);
      }
    });
    const auto gdt = static_cast<c10::ScalarType>(ctx->saved_data["gamma_dtype"].toInt());
    auto dgamma = dgamma_b.sum(0).to(gdt), dbeta = dbeta_b.sum(0).to(gdt);  // [C]
    if (has_add) dadd = dadd.to(static_cast<c10::ScalarType>(ctx->saved_data["add_dtype"].toInt()));
    else dadd = torch::Tensor();
    return {dx, dadd, dgamma, dbeta, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool group_norm_silu_fused(const torch::Tensor& x) {
  return x.device().is_cpu() && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16) &&
         x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
}

torch::Tensor group_norm_silu_reference(const torch::Tensor& x, const torch::Tensor& add, const torch::Tensor& gamma,
                                        const torch::Tensor& beta, int64_t groups, double eps, bool silu) {
  auto z = x.to(torch::kFloat32);                                    // [B,C,H,W]
  if (add.defined()) z = z + add.to(torch::kFloat32).unsqueeze(-1).unsqueeze(-1);
  auto h = torch::group_norm(z, groups, gamma.to(torch::kFloat32), beta.to(torch::kFloat32), eps);
  if (silu) h = torch::silu(h);
  return h.to(x.scalar_type()).contiguous(x.suggest_memory_format());
}

torch::Tensor group_norm_silu(const torch::Tensor& x, const torch::Tensor& add, const torch::Tensor& gamma,
                              const torch::Tensor& beta, int64_t groups, double eps, bool silu) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) % groups == 0, "group_norm_silu: x must be [B,C,H,W] with C divisible by ",
              groups, ", got ", x.sizes());
  TORCH_CHECK(!add.defined() || (add.dim() == 2 && add.size(0) == x.size(0) && add.size(1) == x.size(1)),
              "group_norm_silu: add must be [B,C], got ", add.sizes());
  if (!group_norm_silu_fused(x)) return group_norm_silu_reference(x, add, gamma, beta, groups, eps, silu);
  return GroupNormSiLUFn::apply(x, add.defined() ? add : torch::zeros({0}, x.options().dtype(torch::kFloat32)), gamma,
                                beta, groups, eps, silu);
}

}  // namespace ddpm
