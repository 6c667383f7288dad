// operators.h — the degradations y = A x of the linear inverse problems the restoration methods solve, each with
// a pseudo-inverse A† such that A A† A = A (Wang et al. 2022, "DDNM", §3.1): what DDNM projects with, what ILVR
// filters with (φ = A†A), and what makes the degraded inputs of `ddpm inpaint|upscale|denoise`. Not here: the
// observation noise (a method's σ_y), the methods themselves, mask files and shapes (masks.h).
//
// Every operator acts on images in the model range, x [B,C,H,W]; y has the operator's observation shape.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

namespace ddpm {

class LinearOperator {
 public:
  virtual ~LinearOperator() = default;
  virtual torch::Tensor apply(const torch::Tensor& x) const = 0;  // A x:  [B,C,H,W] -> y
  virtual torch::Tensor pinv(const torch::Tensor& y) const = 0;   // A† y: y -> [B,C,H,W]
  // A†A x, the part of x the observation sees (ILVR's low-pass filter φ for the pooling operator).
  torch::Tensor project(const torch::Tensor& x) const { return pinv(apply(x)); }
  virtual std::string name() const = 0;
};

// Inpainting: A = diag(m) with m 1 where a pixel is known, 0 where it is missing; y has the image's shape (its
// missing pixels are 0). A† = A (a projection). mask: [1 or B, 1 or C, H, W], values 0/1.
class MaskOperator : public LinearOperator {
 public:
  explicit MaskOperator(torch::Tensor mask);
  torch::Tensor apply(const torch::Tensor& x) const override;  // [B,C,H,W] -> [B,C,H,W]
  torch::Tensor pinv(const torch::Tensor& y) const override;   // [B,C,H,W] -> [B,C,H,W]
  std::string name() const override { return "mask"; }
  const torch::Tensor& mask() const { return mask_; }

 private:
  torch::Tensor mask_;  // [1|B, 1|C, H, W]
};

// Super-resolution: A = average pooling over k×k blocks, A† = replicate (nearest) upsampling by k; A A† = I.
class AvgPoolOperator : public LinearOperator {
 public:
  explicit AvgPoolOperator(int64_t factor);
  torch::Tensor apply(const torch::Tensor& x) const override;  // [B,C,H,W] -> [B,C,H/k,W/k]; throws unless k | H, W
  torch::Tensor pinv(const torch::Tensor& y) const override;   // [B,C,h,w] -> [B,C,kh,kw]
  std::string name() const override { return "avgpool" + std::to_string(k_); }
  int64_t factor() const { return k_; }

 private:
  int64_t k_;
};

// Denoising: A = I (the noise is the method's σ_y).
class IdentityOperator : public LinearOperator {
 public:
  torch::Tensor apply(const torch::Tensor& x) const override { return x; }
  torch::Tensor pinv(const torch::Tensor& y) const override { return y; }
  std::string name() const override { return "identity"; }
};

// Colorization (RGB models): A = the mean over channels, A† = copy to every channel; A A† = I.
class ChannelMeanOperator : public LinearOperator {
 public:
  explicit ChannelMeanOperator(int64_t channels);
  torch::Tensor apply(const torch::Tensor& x) const override;  // [B,C,H,W] -> [B,1,H,W]
  torch::Tensor pinv(const torch::Tensor& y) const override;   // [B,1,H,W] -> [B,C,H,W]
  std::string name() const override { return "channel_mean"; }

 private:
  int64_t channels_;
};

}  // namespace ddpm
