// gelu_kernel.h — the tanh-approximated GELU (Hendrycks & Gimpel 2016, eq. in §2:
// gelu(x) ≈ x · ½(1 + tanh(√(2/π)(x + 0.044715 x³)))) and its derivative, on contiguous fp32 or bf16 arrays
// (bf16 as its 16 bits, computed in fp32, rounded to nearest even). Written as x · σ(2u), u = √(2/π)(x +
// 0.044715 x³), since ½(1 + tanh u) = σ(2u); exp is simd.h's exp_approx. Raw pointers, no threads, no LibTorch;
// compiled once per ISA and dispatched at load time. Not here: threads and autograd (gelu.h).
#pragma once

#include <cstdint>

namespace ddpm::kernels {

void gelu_tanh_forward(const float* x, float* y, int64_t n);
void gelu_tanh_forward(const uint16_t* x, uint16_t* y, int64_t n);
// dx = dy · gelu'(x), gelu'(x) = s + x · 2 s (1 − s) · u'(x), s = σ(2u), u' = √(2/π)(1 + 3 · 0.044715 x²).
void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n);
void gelu_tanh_backward(const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t n);

}  // namespace ddpm::kernels
