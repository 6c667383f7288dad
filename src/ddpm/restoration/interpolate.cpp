// interpolate.cpp — see interpolate.h.
#include "ddpm/restoration/interpolate.h"

#include "ddpm/samplers/ddim.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ddpm {

torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double alpha) {
  TORCH_CHECK(a.sizes() == b.sizes(), "slerp: the two latents differ in shape");
  if (alpha == 0.0) return a.clone();
  if (alpha == 1.0) return b.clone();
  const int64_t B = a.size(0);
  auto fa = a.reshape({B, -1}).to(torch::kFloat64), fb = b.reshape({B, -1}).to(torch::kFloat64);  // [B,d]
  auto cos = (fa * fb).sum(1) / (fa.norm(2, 1) * fb.norm(2, 1)).clamp_min(1e-300);               // [B]
  auto theta = cos.clamp(-1.0, 1.0).acos();                                                         // [B]
  auto s = theta.sin();
  auto near = s.abs() < 1e-6;  // nearly parallel: the linear weights
  auto wa = torch::where(near, torch::full_like(s, 1.0 - alpha), ((1.0 - alpha) * theta).sin() / s);
  auto wb = torch::where(near, torch::full_like(s, alpha), (alpha * theta).sin() / s);
  auto out = wa.unsqueeze(1) * fa + wb.unsqueeze(1) * fb;  // [B,d]
  return out.reshape(a.sizes()).to(a.scalar_type());
}

torch::Tensor interpolation_latents(const torch::Tensor& z_a, const torch::Tensor& z_b, int64_t frames) {
  if (frames < 2) throw std::runtime_error("interpolation needs at least 2 frames, got " + std::to_string(frames));
  std::vector<torch::Tensor> f;
  for (int64_t k = 0; k < frames; ++k) f.push_back(slerp(z_a, z_b, static_cast<double>(k) / static_cast<double>(frames - 1)));
  return torch::stack(f, 1).flatten(0, 1);  // [B,F,C,H,W] -> [B·F,C,H,W]
}

torch::Tensor interpolate(const Schedule& schedule, const EpsModel& model_ab, const EpsModel& model_frames,
                          const torch::Tensor& x_a, const torch::Tensor& x_b, const InterpolateOptions& opts) {
  TORCH_CHECK(x_a.sizes() == x_b.sizes(), "interpolate: the two images differ in shape");
  auto z = ddim_invert(schedule, model_ab, torch::cat({x_a, x_b}), opts.steps);  // [2B,C,H,W]
  const int64_t B = x_a.size(0);
  auto latents = interpolation_latents(z.slice(0, 0, B), z.slice(0, B, 2 * B), opts.frames);
  DDIMOptions d;
  d.steps = opts.steps;
  d.eta = 0.0;
  d.clip_x0 = opts.clip_x0;
  d.on_step = opts.on_step;
  return ddim_sample(schedule, model_frames, latents, [](at::IntArrayRef) -> torch::Tensor {
    throw std::logic_error("interpolate: η = 0 DDIM draws no noise");
  }, d);
}

}  // namespace ddpm
