// softmax_kernel.h — the row-wise pieces of attention (attention.h) on fp32 rows held in cache: the scaled
// softmax with its log-sum-exp, the same rows rebuilt from a saved log-sum-exp, and the softmax backward.
// Raw pointers, one block of rows per call, no threads, no LibTorch; compiled once per ISA (AVX-512, AVX2,
// baseline) and dispatched at load time. exp is simd.h's exp_approx (relative error ≈ 1e-7).
// Not here: the matrix products, threads, autograd (attention.cpp).
#pragma once

#include <cstdint>

namespace ddpm::kernels {

// In place on s [rows, n]: s ← softmax(scale · s) per row; lse[r] = log Σ_j exp(scale · s[r,j]).
void softmax_rows(float* s, int64_t rows, int64_t n, float scale, float* lse);

// In place on s [rows, n]: s ← exp(scale · s − lse[r]) (the probabilities softmax_rows wrote, rebuilt from
// the raw scores and the saved log-sum-exp).
void softmax_rows_from_lse(float* s, int64_t rows, int64_t n, float scale, const float* lse);

// In place on dp [rows, n]: dp ← scale · p ⊙ (dp − delta[r]), the gradient of the raw scores from that of the
// probabilities p (delta[r] = Σ_j p[r,j] dp[r,j] = Σ_k o[r,k] do[r,k]).
void softmax_backward_rows(float* dp, const float* p, int64_t rows, int64_t n, float scale, const float* delta);

// Σ_j a[r,j] b[r,j] for every row: out [rows].
void row_dots(const float* a, const float* b, int64_t rows, int64_t n, float* out);

}  // namespace ddpm::kernels
