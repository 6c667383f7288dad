// parallel_mm.cpp — see parallel_mm.h.
#include "ddpm/nn/parallel_mm.h"

#include <ATen/Parallel.h>

namespace ddpm {
namespace {

// a [M,K] @ b [K,N] -> [M,N]: the rows of a in one block per thread, each one BLAS call.
torch::Tensor parallel_mm(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  const auto a = a_in.detach(), b = b_in.detach();  // gradients, if any, are ThreadedLinearFn's business
  auto out = torch::empty({a.size(0), b.size(1)}, a.options());  // [M,N]
  at::parallel_for(0, a.size(0), 16, [&](int64_t i0, int64_t i1) {
    torch::NoGradGuard ng;  // grad mode is per thread: the pool's threads have it on
    auto oi = out.slice(0, i0, i1);
    at::mm_out(oi, a.slice(0, i0, i1), b);
  });
  return out;
}

// y = x wᵀ + b as an autograd op: dx = dy w, dw = dyᵀ x (both again parallel_mm), db = Σ_rows dy.
struct ThreadedLinearFn : torch::autograd::Function<ThreadedLinearFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["x_grad"] = x.requires_grad();
    ctx->saved_data["has_b"] = b.defined();
    auto y = parallel_mm(x, w.t());  // [M,N]
    if (b.defined()) y.add_(b.detach());
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    const auto s = ctx->get_saved_variables();
    const auto dy = g[0].contiguous();                                                          // [M,N]
    auto dx = ctx->saved_data["x_grad"].toBool() ? parallel_mm(dy, s[1]) : torch::Tensor();    // [M,K]
    auto dw = parallel_mm(dy.t(), s[0]);                                                        // [N,K]
    auto db = ctx->saved_data["has_b"].toBool() ? dy.sum(0) : torch::Tensor();                 // [N]
    return {dx, dw, db};
  }
};

}  // namespace

torch::Tensor threaded_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32 ||
      at::get_num_threads() == 1)
    return torch::linear(x, w, b);
  auto sizes = x.sizes().vec();
  const int64_t K = sizes.back();
  auto x2 = x.reshape({-1, K});  // [M,K]
  torch::Tensor y;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad())))
    y = ThreadedLinearFn::apply(x2, w, b);
  else {
    y = parallel_mm(x2, w.t());
    if (b.defined()) y.add_(b);
  }
  sizes.back() = w.size(0);
  return y.view(sizes);  // [..., N]
}

}  // namespace ddpm
