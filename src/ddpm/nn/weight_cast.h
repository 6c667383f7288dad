// weight_cast.h — running fp32 modules in another dtype and layout: a convolution or linear layer applied to
// bf16 (or NHWC) activations with its fp32 weights cast (and reordered) to match — differentiably while
// gradients are recorded, cached per weight version when not. Used by the UNet and the classifier.
// Not here: choosing the precision (precision.h).
#pragma once

#include <torch/torch.h>

#include <unordered_map>

namespace ddpm {

// The convolution of `c` on x, in x's dtype: fp32 calls the module; bf16 casts the fp32 weights (differentiable
// while gradients are recorded; cached per weight version otherwise). 3×3 convolutions go through Winograd where
// it pays: fp32 training on AVX-512 (winograd_conv.h); bf16 inference and training on AVX-512 BF16 without AMX
// (winograd_bf16.h; for inference its transformed weights are cached per weight version like the casts).
class WeightCast {
 public:
  torch::Tensor conv(torch::nn::Conv2d c, const torch::Tensor& x);
  // A linear layer with its (persistent) fp32 weight and bias, in x's dtype.
  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
  // A 1×1 convolution with given (temporary) weights [O,C,1,1] and bias [O], in x's dtype.
  torch::Tensor conv_with(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);
  // w in dtype dt (and channels-last for a 4-D weight when asked).
  torch::Tensor cast(const torch::Tensor& w, torch::ScalarType dt, bool channels_last);

 private:
  struct Entry {
    int64_t version = -1;
    const void* data = nullptr;  // with the version: a weight replaced in place or re-allocated is re-cast
    torch::Tensor value;
  };
  // Entry::value up to date for w (same version and storage), else recomputed by make(w).
  template <class Make>
  const torch::Tensor& cached(std::unordered_map<const void*, Entry>& cache, const torch::Tensor& w, Make make);
  std::unordered_map<const void*, Entry> cache_;       // casts (and reorders)
  std::unordered_map<const void*, Entry> winograd_;    // winograd_bf16_weights
};

}  // namespace ddpm
