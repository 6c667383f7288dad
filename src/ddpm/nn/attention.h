// attention.h — scaled dot-product attention, softmax(Q Kᵀ/√d) V (Vaswani et al. 2017, eq. 1), for the UNet's
// attention blocks and the DiT's heads. On the CPU one fused kernel: the slices (batch × heads) spread over
// torch's threads, and within a slice blocks of query rows whose N-wide scores stay in cache from the product
// Q Kᵀ through the softmax to the product with V — the [S,N,N] score tensor is never written to memory, and
// gradients recompute the probabilities from a saved log-sum-exp (as FlashAttention does, Dao et al. 2022).
// fp32 throughout (bf16 inputs are cast on the way in, the result is cast back: the N×d tensors, not the N×N
// scores). Other devices: LibTorch's own attention.
// Not here: the projections to Q, K, V and back (the callers), masks, dropout.
#pragma once

#include <torch/torch.h>

namespace ddpm {

// q [S,N,d], k [S,M,d], v [S,M,e] -> [S,N,e] in q's dtype; differentiable in all three.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// The same by plain LibTorch ops (bmm, softmax over the materialised [S,N,M] scores): the reference the fused
// kernel is tested against.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

}  // namespace ddpm
