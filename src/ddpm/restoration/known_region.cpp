// known_region.cpp — see known_region.h.
#include "ddpm/restoration/known_region.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

torch::Tensor noised_to(const torch::Tensor& y, double alpha_bar, const NoiseFn& noise) {
  if (alpha_bar >= 1.0) return y;
  auto z = noise(y.sizes()).to(y.device(), y.scalar_type());  // [B,C,H,W]
  return std::sqrt(alpha_bar) * y + std::sqrt(1.0 - alpha_bar) * z;  // eq. 4
}

torch::Tensor paste_known(const torch::Tensor& keep, const torch::Tensor& known, const torch::Tensor& unknown) {
  return torch::where(keep.to(known.device()) > 0.5, known, unknown);  // [B,C,H,W]
}

void check_keep_mask(const torch::Tensor& keep, const torch::Tensor& like, const std::string& what) {
  auto shape = [](at::IntArrayRef s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
    return r + "]";
  };
  if (!keep.defined() || keep.dim() != 4 || like.dim() != 4 || keep.size(2) != like.size(2) ||
      keep.size(3) != like.size(3) || (keep.size(0) != 1 && keep.size(0) != like.size(0)) ||
      (keep.size(1) != 1 && keep.size(1) != like.size(1)))
    throw std::runtime_error(what + ": shape " + (keep.defined() ? shape(keep.sizes()) : std::string("(none)")) +
                             " does not fit the images " + shape(like.sizes()));
  auto k = keep.to(torch::kCPU, torch::kFloat64);
  if (!(k.eq(0) | k.eq(1)).all().item<bool>()) throw std::runtime_error(what + ": values must be 0 (missing) or 1 (known)");
  // per image: at least one pixel known and one missing
  auto per = k.flatten(1);  // [B', C·H·W]
  if (!(per.amax(1) > 0.5).all().item<bool>()) throw std::runtime_error(what + ": keeps nothing (every pixel is missing)");
  if (!(per.amin(1) < 0.5).all().item<bool>()) throw std::runtime_error(what + ": keeps everything (no pixel to fill)");
}

}  // namespace ddpm
