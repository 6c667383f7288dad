// attention.cpp — see attention.h. Size legend: S slices (batch × heads), N queries, M keys, d key width, e value
// width; a block is R query rows of one slice or G whole slices, its fp32 scores ≈ kBlockBytes at most (a share
// of a core's L2).
//
// Forward, per slice and block of rows (scale c = 1/√d):
//   P = softmax(c Q Kᵀ) (rows), lse = log Σ exp(c Q Kᵀ), O = P V.
// Backward, from dO (the same blocks, P rebuilt from lse):
//   dV = Σ_blocks Pᵀ dO,  dP = dO Vᵀ,  δ = rowsum(dO ⊙ O),  dS = c P ⊙ (dP − δ),  dQ = dS K,  dK = Σ dSᵀ Q.
#include "ddpm/nn/attention.h"

#include "ddpm/nn/softmax_kernel.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>

namespace ddpm {
namespace {

constexpr int64_t kBlockBytes = 256 * 1024;

// How one thread's work is cut: R query rows per block when a slice's N×M scores exceed kBlockBytes, else G
// whole slices per block (one batched product for all of them: small slices are dominated by per-call cost),
// with at least two blocks per thread so that the threads stay balanced.
struct Blocking {
  int64_t R, G;
};
Blocking blocking(int64_t S, int64_t N, int64_t M) {
  const int64_t row_bytes = 4 * std::max<int64_t>(M, 1);
  const int64_t R = std::max<int64_t>(1, std::min<int64_t>(N, kBlockBytes / row_bytes));
  if (R < N) return {R, 1};
  const int64_t fit = std::max<int64_t>(1, kBlockBytes / (row_bytes * N));
  const int64_t balanced = std::max<int64_t>(1, S / (2 * static_cast<int64_t>(at::get_num_threads())));
  return {N, std::min(fit, balanced)};
}

float scale_of(const torch::Tensor& q) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(2)))); }

// O [S,N,e] and lse [S,N] from fp32 contiguous q, k, v.
void fused_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, torch::Tensor& o,
                   torch::Tensor& lse) {
  const int64_t S = q.size(0), N = q.size(1), M = k.size(1);
  const auto [R, G] = blocking(S, N, M);
  const float c = scale_of(q);
  o = torch::empty({S, N, v.size(2)}, q.options());  // [S,N,e]
  lse = torch::empty({S, N}, q.options());           // [S,N]
  const auto kt = k.transpose(1, 2);                 // [S,d,M]
  const int64_t groups = (S + G - 1) / G;
  at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    torch::NoGradGuard ng;  // grad mode is per thread
    auto buf = torch::empty({G, R, M}, q.options());  // [G,R,M] scores, then probabilities
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t s0 = g * G, n = std::min(G, S - s0);
      if (R == N) {  // n whole slices at once
        auto p = buf.narrow(0, 0, n);                                                   // [n,N,M]
        at::bmm_out(p, q.narrow(0, s0, n), kt.narrow(0, s0, n));                        // Q Kᵀ
        kernels::softmax_rows(p.data_ptr<float>(), n * N, M, c, lse.data_ptr<float>() + s0 * N);  // P, lse
        auto ob = o.narrow(0, s0, n);
        at::bmm_out(ob, p, v.narrow(0, s0, n));                                         // P V [n,N,e]
        continue;
      }
      const auto qs = q[s0], ks_t = kt[s0], vs = v[s0];  // one slice in row blocks
      auto os = o[s0];
      float* l = lse[s0].data_ptr<float>();
      for (int64_t r0 = 0; r0 < N; r0 += R) {
        const int64_t r = std::min(R, N - r0);
        auto p = buf[0].narrow(0, 0, r);                                   // [r,M]
        at::mm_out(p, qs.narrow(0, r0, r), ks_t);                          // Q Kᵀ
        kernels::softmax_rows(p.data_ptr<float>(), r, M, c, l + r0);       // P, lse
        auto ob = os.narrow(0, r0, r);
        at::mm_out(ob, p, vs);                                             // P V [r,e]
      }
    }
  });
}

// dq, dk, dv from fp32 contiguous q, k, v, o, lse and do.
void fused_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& o,
                    const torch::Tensor& lse, const torch::Tensor& dout, torch::Tensor& dq, torch::Tensor& dk,
                    torch::Tensor& dv) {
  const int64_t S = q.size(0), N = q.size(1), M = k.size(1), e = v.size(2);
  const auto [R, G] = blocking(S, N, M);
  const float c = scale_of(q);
  dq = torch::empty_like(q);
  dk = torch::empty_like(k);
  dv = torch::empty_like(v);
  const auto kt = k.transpose(1, 2), vt = v.transpose(1, 2);  // [S,d,M], [S,e,M]
  const int64_t groups = (S + G - 1) / G;
  at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    torch::NoGradGuard ng;
    auto pbuf = torch::empty({G, R, M}, q.options()), gbuf = torch::empty({G, R, M}, q.options());  // [G,R,M] each
    std::vector<float> delta(static_cast<size_t>(G * R));
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t s0 = g * G, n = std::min(G, S - s0);
      if (R == N) {  // n whole slices at once
        auto p = pbuf.narrow(0, 0, n), gr = gbuf.narrow(0, 0, n);                       // [n,N,M]
        const auto qb = q.narrow(0, s0, n), dob = dout.narrow(0, s0, n);                // [n,N,d], [n,N,e]
        at::bmm_out(p, qb, kt.narrow(0, s0, n));
        kernels::softmax_rows_from_lse(p.data_ptr<float>(), n * N, M, c, lse.data_ptr<float>() + s0 * N);  // P
        auto dvb = dv.narrow(0, s0, n);
        at::bmm_out(dvb, p.transpose(1, 2), dob);                                       // dV = Pᵀ dO
        at::bmm_out(gr, dob, vt.narrow(0, s0, n));                                      // dP = dO Vᵀ
        kernels::row_dots(dob.data_ptr<float>(), o.narrow(0, s0, n).data_ptr<float>(), n * N, e, delta.data());  // δ
        kernels::softmax_backward_rows(gr.data_ptr<float>(), p.data_ptr<float>(), n * N, M, c, delta.data());  // dS
        auto dqb = dq.narrow(0, s0, n), dkb = dk.narrow(0, s0, n);
        at::bmm_out(dqb, gr, k.narrow(0, s0, n));                                       // dQ = dS K
        at::bmm_out(dkb, gr.transpose(1, 2), qb);                                       // dK = dSᵀ Q
        continue;
      }
      const auto qs = q[s0], ks = k[s0], vs_t = vt[s0], os = o[s0], dos = dout[s0];  // one slice in row blocks
      auto dqs = dq[s0], dks = dk[s0], dvs = dv[s0];
      dks.zero_(), dvs.zero_();
      const float* l = lse[s0].data_ptr<float>();
      for (int64_t r0 = 0; r0 < N; r0 += R) {
        const int64_t r = std::min(R, N - r0);
        auto p = pbuf[0].narrow(0, 0, r), gr = gbuf[0].narrow(0, 0, r);   // [r,M]
        const auto qb = qs.narrow(0, r0, r), dob = dos.narrow(0, r0, r);  // [r,d], [r,e]
        at::mm_out(p, qb, ks.t());
        kernels::softmax_rows_from_lse(p.data_ptr<float>(), r, M, c, l + r0);        // P
        dvs.addmm_(p.t(), dob);                                                      // dV += Pᵀ dO
        at::mm_out(gr, dob, vs_t);                                                   // dP = dO Vᵀ
        kernels::row_dots(dob.data_ptr<float>(), os.narrow(0, r0, r).data_ptr<float>(), r, e, delta.data());  // δ
        kernels::softmax_backward_rows(gr.data_ptr<float>(), p.data_ptr<float>(), r, M, c, delta.data());    // dS
        auto dqb = dqs.narrow(0, r0, r);
        at::mm_out(dqb, gr, ks);                                                     // dQ = dS K
        dks.addmm_(gr.t(), qb);                                                      // dK += dSᵀ Q
      }
    }
  });
}

struct FusedAttentionFn : torch::autograd::Function<FusedAttentionFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
    torch::Tensor o, lse;
    fused_forward(q, k, v, o, lse);
    ctx->save_for_backward({q, k, v, o, lse});
    return o;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    const auto s = ctx->get_saved_variables();
    torch::Tensor dq, dk, dv;
    fused_backward(s[0], s[1], s[2], s[3], s[4], g[0].contiguous(), dq, dk, dv);
    return {dq, dk, dv};
  }
};

}  // namespace

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  auto w = torch::softmax(torch::bmm(q, k.transpose(1, 2)) * (1.0 / std::sqrt(static_cast<double>(q.size(2)))), -1);
  return torch::bmm(w, v);  // [S,N,e]
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3 || k.size(0) != q.size(0) || v.size(0) != q.size(0) ||
      k.size(2) != q.size(2) || v.size(1) != k.size(1))
    throw std::runtime_error("attention: q [S,N,d], k [S,M,d] and v [S,M,e] expected");
  if (!q.device().is_cpu()) {
#if TORCH_VERSION_MAJOR >= 2
    return at::scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1);
#else
    return attention_reference(q, k, v);
#endif
  }
  const auto dt = q.scalar_type();
  auto f32 = [](const torch::Tensor& t) { return t.to(torch::kFloat32).contiguous(); };
  const auto qf = f32(q), kf = f32(k), vf = f32(v);
  torch::Tensor o;
  if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) {
    o = FusedAttentionFn::apply(qf, kf, vf);
  } else {
    torch::Tensor lse;
    fused_forward(qf, kf, vf, o, lse);
  }
  return o.to(dt);  // [S,N,e]
}

}  // namespace ddpm
