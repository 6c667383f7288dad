// group_norm_kernel.cpp — see group_norm_kernel.h. Plain loops that the compiler vectorises along the channel
// axis (contiguous in channels-last), built for AVX-512, AVX2 and the x86-64 baseline with GCC's target_clones
// (one dispatch per call, at load time). Not here: threads, LibTorch.
//
// Forward (one image, z = x + add):
//   per channel c, shifted sums over positions (shift K_c = x[0,c], which keeps E[d²] − E[d]² exact enough in fp32):
//     S1_c = Σ_p (x − K_c), S2_c = Σ_p (x − K_c)²  →  mean_c, M2_c (fp64)
//   per group g (Chan et al.'s pairwise combine): μ_g = mean over c ∈ g of (mean_c + add_c),
//     M2_g = Σ_c M2_c + P (mean_c + add_c − μ_g)²,  rstd_g = 1/√(M2_g/(P·C_g) + ε)
//   y = silu(u), u = a_c x + b_c with a_c = γ_c rstd_g, b_c = β_c + (add_c − μ_g) a_c.
// Backward, with ẑ = (z − μ_g) rstd_g, du = dy · silu'(u) (silu'(u) = σ(u)(1 + u(1 − σ(u)))), dẑ = γ_c du:
//   dz = rstd_g (dẑ − mean_g(dẑ) − ẑ mean_g(dẑ ẑ))    (means over the P·C_g elements of the group)
//   dγ_c = Σ_p du ẑ,  dβ_c = Σ_p du,  dadd_c = Σ_p dz = rstd_g (γ_c A_c − P m1_g − m2_g Σ_p ẑ).
#include "ddpm/nn/group_norm_kernel.h"

#include "ddpm/util/simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace ddpm::kernels {
namespace {

DDPM_INLINE float sigmoid(float u) { return 1.0f / (1.0f + exp_approx(-u)); }

template <typename T>
DDPM_INLINE void forward_impl(const T* x, const float* add, const float* gamma, const float* beta, T* y, float* mean,
                              float* rstd, const GroupNormShape& s) {
  const int64_t P = s.P, C = s.C, Cg = C / s.G;
  std::vector<float> K(C), S1(C, 0.0f), S2(C, 0.0f), a(C), b(C), row(C);
  for (int64_t c = 0; c < C; ++c) K[c] = load(x, c);
  for (int64_t p = 0; p < P; ++p) {
    const T* row = x + p * C;
    for (int64_t c = 0; c < C; ++c) {
      const float d = load(row, c) - K[c];
      S1[c] += d;
      S2[c] += d * d;
    }
  }
  const double Pd = static_cast<double>(P);
  for (int64_t g = 0; g < s.G; ++g) {
    double mu = 0;
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) mu += K[c] + S1[c] / Pd + (add ? add[c] : 0.0f);
    mu /= static_cast<double>(Cg);
    double m2 = 0;
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
      const double mc = K[c] + S1[c] / Pd + (add ? add[c] : 0.0f);
      m2 += std::max(0.0, S2[c] - static_cast<double>(S1[c]) * S1[c] / Pd) + Pd * (mc - mu) * (mc - mu);
    }
    const double r = 1.0 / std::sqrt(m2 / (Pd * static_cast<double>(Cg)) + s.eps);
    mean[g] = static_cast<float>(mu);
    rstd[g] = static_cast<float>(r);
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
      a[c] = static_cast<float>(r * gamma[c]);
      b[c] = static_cast<float>(beta[c] + ((add ? add[c] : 0.0) - mu) * r * gamma[c]);
    }
  }
  for (int64_t p = 0; p < P; ++p) {
    const T* in = x + p * C;
    T* out = y + p * C;
    if (s.silu) {
      // Two loops: GCC 12 vectorises the SiLU and the bf16 rounding well apart, not fused (8× slower).
      for (int64_t c = 0; c < C; ++c) {
        const float u = load(in, c) * a[c] + b[c];
        row[c] = u * sigmoid(u);
      }
      for (int64_t c = 0; c < C; ++c) store(out, c, row[c]);
    } else {
      for (int64_t c = 0; c < C; ++c) store(out, c, load(in, c) * a[c] + b[c]);
    }
  }
}

template <typename T>
DDPM_INLINE void backward_impl(const T* x, const T* dy, const float* add, const float* gamma, const float* beta,
                               const float* mean, const float* rstd, T* dx, float* dadd, float* dgamma, float* dbeta,
                               float* du_buf, const GroupNormShape& s) {
  const int64_t P = s.P, C = s.C, Cg = C / s.G;
  // ẑ = r_c x + q_c with r_c = rstd_g, q_c = (add_c − μ_g) rstd_g.
  std::vector<float> r(C), q(C), A(C, 0.0f), B(C, 0.0f), Z(C, 0.0f), m1(C), m2(C);
  for (int64_t c = 0; c < C; ++c) {
    const int64_t g = c / Cg;
    r[c] = rstd[g];
    q[c] = ((add ? add[c] : 0.0f) - mean[g]) * rstd[g];
  }
  for (int64_t p = 0; p < P; ++p) {
    const T* in = x + p * C;
    const T* g_in = dy + p * C;
    float* du_row = du_buf + p * C;
    if (s.silu) {
      for (int64_t c = 0; c < C; ++c) {
        const float zh = load(in, c) * r[c] + q[c];
        const float u = zh * gamma[c] + beta[c];
        const float sg = sigmoid(u);
        const float du = load(g_in, c) * sg * (1.0f + u * (1.0f - sg));
        du_row[c] = du;
        A[c] += du;
        B[c] += du * zh;
        Z[c] += zh;
      }
    } else {
      for (int64_t c = 0; c < C; ++c) {
        const float zh = load(in, c) * r[c] + q[c];
        const float du = load(g_in, c);
        du_row[c] = du;
        A[c] += du;
        B[c] += du * zh;
        Z[c] += zh;
      }
    }
  }
  const double n = static_cast<double>(P) * static_cast<double>(Cg);
  for (int64_t g = 0; g < s.G; ++g) {
    double s1 = 0, s2 = 0;
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
      s1 += static_cast<double>(gamma[c]) * A[c];
      s2 += static_cast<double>(gamma[c]) * B[c];
    }
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
      m1[c] = static_cast<float>(s1 / n);
      m2[c] = static_cast<float>(s2 / n);
    }
  }
  for (int64_t p = 0; p < P; ++p) {
    const T* in = x + p * C;
    const float* du_row = du_buf + p * C;
    T* out = dx + p * C;
    for (int64_t c = 0; c < C; ++c) {
      const float zh = load(in, c) * r[c] + q[c];
      store(out, c, r[c] * (du_row[c] * gamma[c] - m1[c] - zh * m2[c]));
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    dgamma[c] = B[c];
    dbeta[c] = A[c];
    if (dadd) dadd[c] = r[c] * (gamma[c] * A[c] - static_cast<float>(P) * m1[c] - m2[c] * Z[c]);
  }
}

}  // namespace

DDPM_CLONES void group_norm_forward(const float* x, const float* add, const float* gamma, const float* beta, float* y,
                                    float* mean, float* rstd, const GroupNormShape& s) {
  forward_impl(x, add, gamma, beta, y, mean, rstd, s);
}
DDPM_CLONES void group_norm_forward(const uint16_t* x, const float* add, const float* gamma, const float* beta,
                                    uint16_t* y, float* mean, float* rstd, const GroupNormShape& s) {
  forward_impl(x, add, gamma, beta, y, mean, rstd, s);
}
DDPM_CLONES void group_norm_backward(const float* x, const float* dy, const float* add, const float* gamma,
                                     const float* beta, const float* mean, const float* rstd, float* dx, float* dadd,
                                     float* dgamma, float* dbeta, float* scratch, const GroupNormShape& s) {
  backward_impl(x, dy, add, gamma, beta, mean, rstd, dx, dadd, dgamma, dbeta, scratch, s);
}
DDPM_CLONES void group_norm_backward(const uint16_t* x, const uint16_t* dy, const float* add, const float* gamma,
                                     const float* beta, const float* mean, const float* rstd, uint16_t* dx,
                                     float* dadd, float* dgamma, float* dbeta, float* scratch,
                                     const GroupNormShape& s) {
  backward_impl(x, dy, add, gamma, beta, mean, rstd, dx, dadd, dgamma, dbeta, scratch, s);
}

const char* group_norm_isa() {
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512";
  if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
  return "baseline";
}

}  // namespace ddpm::kernels
