// operators.cpp — see operators.h.
#include "ddpm/restoration/operators.h"

#include <stdexcept>

namespace ddpm {

MaskOperator::MaskOperator(torch::Tensor mask) : mask_(std::move(mask)) {
  if (!mask_.defined() || mask_.dim() != 4) throw std::runtime_error("mask operator: expected a [B,C,H,W] mask");
}

torch::Tensor MaskOperator::apply(const torch::Tensor& x) const {
  return x * mask_.to(x.device(), x.scalar_type());  // [B,C,H,W]
}

torch::Tensor MaskOperator::pinv(const torch::Tensor& y) const { return apply(y); }

AvgPoolOperator::AvgPoolOperator(int64_t factor) : k_(factor) {
  if (factor < 1) throw std::runtime_error("pooling factor must be >= 1, got " + std::to_string(factor));
}

torch::Tensor AvgPoolOperator::apply(const torch::Tensor& x) const {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  if (H % k_ != 0 || W % k_ != 0)
    throw std::runtime_error("factor " + std::to_string(k_) + " does not divide the image size " + std::to_string(H) +
                             "x" + std::to_string(W));
  // Block means by reshaping (exact, no padding): [B,C,h,k,w,k] -> mean over the two k axes.
  return x.reshape({B, C, H / k_, k_, W / k_, k_}).mean({3, 5});  // [B,C,H/k,W/k]
}

torch::Tensor AvgPoolOperator::pinv(const torch::Tensor& y) const {
  return y.repeat_interleave(k_, 2).repeat_interleave(k_, 3);  // [B,C,kh,kw]
}

ChannelMeanOperator::ChannelMeanOperator(int64_t channels) : channels_(channels) {
  if (channels < 1) throw std::runtime_error("channel mean: channels must be >= 1");
}

torch::Tensor ChannelMeanOperator::apply(const torch::Tensor& x) const { return x.mean(1, true); }  // [B,1,H,W]

torch::Tensor ChannelMeanOperator::pinv(const torch::Tensor& y) const {
  return y.expand({y.size(0), channels_, y.size(2), y.size(3)}).contiguous();  // [B,C,H,W]
}

}  // namespace ddpm
