// gelu.cpp — see gelu.h.
#include "ddpm/nn/gelu.h"

#include "ddpm/nn/gelu_kernel.h"

#include <ATen/Parallel.h>

namespace ddpm {
namespace {

constexpr int64_t kGrain = 16384;  // elements per task

bool ours(const torch::Tensor& x) {
  return x.device().is_cpu() && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16);
}

torch::Tensor forward_cpu(const torch::Tensor& x_in) {
  const auto x = x_in.contiguous();
  auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  const bool bf = x.scalar_type() == torch::kBFloat16;
  at::parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) {
    if (bf)
      kernels::gelu_tanh_forward(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()) + i0,
                                 reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>()) + i0, i1 - i0);
    else kernels::gelu_tanh_forward(x.data_ptr<float>() + i0, y.data_ptr<float>() + i0, i1 - i0);
  });
  return y;
}

torch::Tensor backward_cpu(const torch::Tensor& x_in, const torch::Tensor& dy_in) {
  const auto x = x_in.contiguous(), dy = dy_in.to(x.scalar_type()).contiguous();
  auto dx = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  const bool bf = x.scalar_type() == torch::kBFloat16;
  at::parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) {
    if (bf)
      kernels::gelu_tanh_backward(reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()) + i0,
                                  reinterpret_cast<const uint16_t*>(dy.data_ptr<at::BFloat16>()) + i0,
                                  reinterpret_cast<uint16_t*>(dx.data_ptr<at::BFloat16>()) + i0, i1 - i0);
    else kernels::gelu_tanh_backward(x.data_ptr<float>() + i0, dy.data_ptr<float>() + i0, dx.data_ptr<float>() + i0, i1 - i0);
  });
  return dx;
}

struct GeluTanhFn : torch::autograd::Function<GeluTanhFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    ctx->save_for_backward({x});
    return forward_cpu(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    return {backward_cpu(ctx->get_saved_variables()[0], g[0])};
  }
};

}  // namespace

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  if (!ours(x)) return torch::gelu(x, "tanh");
  if (torch::GradMode::is_enabled() && x.requires_grad()) return GeluTanhFn::apply(x);
  return forward_cpu(x);
}

}  // namespace ddpm
