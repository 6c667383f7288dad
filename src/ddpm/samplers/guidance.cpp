// guidance.cpp — see guidance.h.
#include "ddpm/samplers/guidance.h"

namespace ddpm {

EpsModel classifier_free_guidance(CondEpsModel model, torch::Tensor labels, int64_t null_label, double w) {
  return [model = std::move(model), labels = std::move(labels), null_label, w](const torch::Tensor& x,
                                                                               const torch::Tensor& t) {
    auto y = labels.to(x.device(), torch::kLong);  // [B]
    if (w == 0.0) return model(x, t, y);
    const int64_t B = x.size(0);
    auto both = model(torch::cat({x, x}), torch::cat({t, t}), torch::cat({y, torch::full_like(y, null_label)}));  // [2B,...]
    auto cond = both.slice(0, 0, B), uncond = both.slice(0, B, 2 * B);
    return (1.0 + w) * cond - w * uncond;  // eq. 6
  };
}

}  // namespace ddpm
