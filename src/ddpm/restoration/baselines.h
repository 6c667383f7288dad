// baselines.h — what the restoration verbs are measured by and measured against: PSNR, and the classical answer
// to each problem with no model at all (inpainting: fill with the mean of the known pixels; super-resolution:
// bicubic upsampling; denoising: the best Gaussian filter for the given images, tuned on their ground truth, so
// an oracle-tuned upper bound of that filter family). Not here: the diffusion methods (the other restoration/
// files), the degradations (operators.h), FID and the other distribution metrics (eval/metrics.h).
//
// Images in the model range [−1, 1] unless a function says [0, 1]; [N,C,H,W] float.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace ddpm {

// The [0, 1] pixel values of the uint8 image a model-range tensor is written as: round((x + 1)·127.5), clamped
// to [0, 255], divided by 255 (data.h's to_uint8). So PSNRs measure exactly the pixels a PNG holds. -> float64
torch::Tensor unit_pixels(const torch::Tensor& x);
// uint8 [N,C,H,W] -> float64 [0, 1].
torch::Tensor unit_pixels_u8(const torch::Tensor& u8);

// PSNR in dB per image of two [N,C,H,W] tensors in [0, 1]: 10·log10(1/MSE), the MSE over every channel and pixel,
// or, with `region` ([1|N, 1|C, H, W], 1 = counted), over the region's pixels only (all channels). The MSE is
// floored at 1e-10 (at most 100 dB), so identical images give a finite number. Throws if the shapes differ or a
// region is empty. -> [N] float64
torch::Tensor psnr(const torch::Tensor& a01, const torch::Tensor& b01, const torch::Tensor& region = {});

// Mean and standard error (sample std with N − 1 over √N; 0 for one value) of a [N] tensor.
struct MeanSE {
  double mean = 0.0, se = 0.0;
  int64_t n = 0;
};
MeanSE mean_se(const torch::Tensor& values);

// Inpainting baseline: every missing pixel (keep < 0.5) of each image gets the mean of that image's known pixels,
// channel by channel; known pixels are returned unchanged. y [N,C,H,W], keep [1|N, 1, H, W] 0/1 -> [N,C,H,W]
torch::Tensor known_mean_fill(const torch::Tensor& y, const torch::Tensor& keep);

// Super-resolution baseline: bicubic upsampling by `factor` (torch's interpolate, align_corners = false), clamped
// to [−1, 1]. low [N,C,h,w] -> [N,C,factor·h,factor·w]
torch::Tensor bicubic_upscale(const torch::Tensor& low, int64_t factor);

// Separable Gaussian filter of std `sigma_px` pixels (kernel radius ⌈3σ⌉, normalised, edges replicated), per
// channel. x [N,C,H,W] -> [N,C,H,W]. sigma_px must be > 0.
torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma_px);

// The blur stds the denoising baseline searches: 0.3, 0.4, …, 3.0 pixels.
std::vector<double> default_blur_grid();

// Denoising baseline: of the Gaussian filters in `sigmas_px`, the one whose output (clamped to [−1, 1]) has the
// highest mean PSNR (unit_pixels) against `clean` over the whole set — tuned on the ground truth (an oracle).
// noisy, clean [N,C,H,W] model range.
struct BlurBaseline {
  double sigma_px = 0.0;
  torch::Tensor images;  // [N,C,H,W] the filtered images, clamped to [−1, 1]
  double mean_psnr = 0.0;
};
BlurBaseline best_gaussian_blur(const torch::Tensor& noisy, const torch::Tensor& clean,
                                const std::vector<double>& sigmas_px = default_blur_grid());

}  // namespace ddpm
