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

// The kernel over the elements of contiguous tensors, in chunks spread over the threads; the kernel takes fp32
// pointers, or bf16 ones as their 16 bits.
template <typename Kernel>
void for_chunks(const torch::Tensor& like, Kernel&& k) {
  const bool bf = like.scalar_type() == torch::kBFloat16;
  at::parallel_for(0, like.numel(), kGrain, [&](int64_t i0, int64_t i1) {
    if (bf) k(static_cast<uint16_t*>(nullptr), i0, i1 - i0);
    else k(static_cast<float*>(nullptr), i0, i1 - i0);
  });
}
template <typename T>
T* ptr(const torch::Tensor& t, T* /*tag*/) {
  return static_cast<T*>(t.data_ptr());
}

torch::Tensor forward_cpu(const torch::Tensor& x_in) {
  const auto x = x_in.contiguous();
  auto y = torch::empty_like(x, at::MemoryFormat::Contiguous);
  for_chunks(x, [&](auto tag, int64_t i0, int64_t n) { kernels::gelu_tanh_forward(ptr(x, tag) + i0, ptr(y, tag) + i0, n); });
  return y;
}

torch::Tensor backward_cpu(const torch::Tensor& x_in, const torch::Tensor& dy_in) {
  const auto x = x_in.contiguous(), dy = dy_in.to(x.scalar_type()).contiguous();
  auto dx = torch::empty_like(x, at::MemoryFormat::Contiguous);
  for_chunks(x, [&](auto tag, int64_t i0, int64_t n) {
    kernels::gelu_tanh_backward(ptr(x, tag) + i0, ptr(dy, tag) + i0, ptr(dx, tag) + i0, n);
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
