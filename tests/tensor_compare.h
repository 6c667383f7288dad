// tensor_compare.h — the error measure the numerics tests share: the largest absolute difference from a
// reference, relative to the reference's largest magnitude, in fp64 (whatever the tensors' dtypes).
#pragma once

#include <torch/torch.h>

namespace ddpm::test {

inline double max_rel(const torch::Tensor& a, const torch::Tensor& ref) {
  const auto R = ref.to(torch::kFloat64);
  return ((a.to(torch::kFloat64) - R).abs().max() / R.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace ddpm::test
