// baselines.cpp — see baselines.h.
#include "ddpm/restoration/baselines.h"

#include "ddpm/data/data.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

torch::Tensor unit_pixels_u8(const torch::Tensor& u8) { return u8.to(torch::kCPU, torch::kFloat64).div(255.0); }

torch::Tensor unit_pixels(const torch::Tensor& x) { return unit_pixels_u8(to_uint8(x)); }

torch::Tensor psnr(const torch::Tensor& a01, const torch::Tensor& b01, const torch::Tensor& region) {
  if (a01.sizes() != b01.sizes() || a01.dim() != 4)
    throw std::runtime_error("psnr: expected two [N,C,H,W] tensors of one shape");
  auto d = (a01.to(torch::kCPU, torch::kFloat64) - b01.to(torch::kCPU, torch::kFloat64)).pow(2);  // [N,C,H,W]
  torch::Tensor mse;
  if (region.defined()) {
    auto r = (region.to(torch::kCPU, torch::kFloat64) > 0.5).to(torch::kFloat64).expand_as(d);  // [N,C,H,W]
    auto cnt = r.flatten(1).sum(1);                                                              // [N]
    if (!(cnt > 0).all().item<bool>()) throw std::runtime_error("psnr: the region is empty");
    mse = (d * r).flatten(1).sum(1) / cnt;
  } else {
    mse = d.flatten(1).mean(1);  // [N]
  }
  return 10.0 * torch::log10(1.0 / mse.clamp_min(1e-10));
}

MeanSE mean_se(const torch::Tensor& values) {
  MeanSE r;
  auto v = values.to(torch::kCPU, torch::kFloat64).flatten();
  r.n = v.numel();
  if (r.n == 0) return r;
  r.mean = v.mean().item<double>();
  if (r.n > 1) r.se = v.std(/*unbiased=*/true).item<double>() / std::sqrt(static_cast<double>(r.n));
  return r;
}

torch::Tensor known_mean_fill(const torch::Tensor& y, const torch::Tensor& keep) {
  auto k = (keep.to(y.device(), y.scalar_type()) > 0.5).to(y.scalar_type());
  k = k.expand({y.size(0), 1, y.size(2), y.size(3)});  // [N,1,H,W]
  auto cnt = k.sum({2, 3}, true);  // [N,1,1,1]
  if (!(cnt > 0).all().item<bool>()) throw std::runtime_error("known_mean_fill: an image has no known pixel");
  auto mean = (y * k).sum({2, 3}, true) / cnt;  // [N,C,1,1]
  return torch::where(k > 0.5, y, mean.expand_as(y));
}

torch::Tensor bicubic_upscale(const torch::Tensor& low, int64_t factor) {
  namespace F = torch::nn::functional;
  if (factor < 1) throw std::runtime_error("bicubic_upscale: factor must be >= 1");
  const std::vector<int64_t> size = {low.size(2) * factor, low.size(3) * factor};
  auto up = F::interpolate(low.to(torch::kFloat32),
                           F::InterpolateFuncOptions().size(size).mode(torch::kBicubic).align_corners(false));
  return up.clamp(-1.0, 1.0);
}

torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma_px) {
  namespace F = torch::nn::functional;
  if (!(sigma_px > 0)) throw std::runtime_error("gaussian_blur: sigma must be > 0");
  const int64_t r = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3.0 * sigma_px)));
  const int64_t C = x.size(1);
  auto pos = torch::arange(-r, r + 1, torch::kFloat64);
  auto k = torch::exp(-(pos * pos) / (2.0 * sigma_px * sigma_px));
  k = (k / k.sum()).to(x.scalar_type()).to(x.device());  // [2r+1]
  auto kh = k.view({1, 1, 1, 2 * r + 1}).expand({C, 1, 1, 2 * r + 1}).contiguous();
  auto kv = k.view({1, 1, 2 * r + 1, 1}).expand({C, 1, 2 * r + 1, 1}).contiguous();
  // Replicated edges, padded per pass (replicate padding works whatever the image size, unlike reflection).
  auto h = F::pad(x, F::PadFuncOptions({r, r, 0, 0}).mode(torch::kReplicate));
  h = F::conv2d(h, kh, F::Conv2dFuncOptions().groups(C));
  auto v = F::pad(h, F::PadFuncOptions({0, 0, r, r}).mode(torch::kReplicate));
  return F::conv2d(v, kv, F::Conv2dFuncOptions().groups(C));
}

std::vector<double> default_blur_grid() {
  std::vector<double> g;
  for (int i = 3; i <= 30; ++i) g.push_back(i / 10.0);
  return g;
}

BlurBaseline best_gaussian_blur(const torch::Tensor& noisy, const torch::Tensor& clean,
                                const std::vector<double>& sigmas_px) {
  if (sigmas_px.empty()) throw std::runtime_error("best_gaussian_blur: no blur std to try");
  if (noisy.sizes() != clean.sizes())
    throw std::runtime_error("best_gaussian_blur: noisy and clean images differ in shape");
  BlurBaseline best;
  const auto ref = unit_pixels(clean);
  bool first = true;
  for (double s : sigmas_px) {
    auto out = gaussian_blur(noisy.to(torch::kFloat32), s).clamp(-1.0, 1.0);
    const double p = psnr(unit_pixels(out), ref).mean().item<double>();
    if (first || p > best.mean_psnr) {
      best.sigma_px = s;
      best.images = out;
      best.mean_psnr = p;
      first = false;
    }
  }
  return best;
}

}  // namespace ddpm
