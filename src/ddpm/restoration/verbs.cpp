// verbs.cpp — see verbs.h. Moved out of app/cmd_restore.cpp unchanged in what it computes, so the CLI and the
// server share it.
#include "ddpm/restoration/verbs.h"

#include "ddpm/data/data.h"
#include "ddpm/restoration/baselines.h"
#include "ddpm/restoration/ddnm.h"
#include "ddpm/restoration/denoise.h"
#include "ddpm/restoration/ilvr.h"
#include "ddpm/restoration/interpolate.h"
#include "ddpm/restoration/operators.h"
#include "ddpm/restoration/repaint.h"
#include "ddpm/restoration/replace.h"
#include "ddpm/restoration/sdedit.h"
#include "ddpm/samplers/ddim.h"
#include "ddpm/util/runtime.h"

#include <algorithm>
#include <stdexcept>

namespace ddpm {

namespace {

// The degraded inputs of ground-truth images draw from their own stream, per dataset index.
constexpr uint64_t kStreamInputNoise = 212;

// Pair p = i·K + k -> input i, as an index tensor for the pairs [first, first + n).
torch::Tensor inputs_of(int64_t first, int64_t n, int64_t K, const torch::Device& device) {
  return torch::arange(first, first + n, torch::kLong).div(K, "floor").to(device);
}

NoiseFn no_noise() {
  return [](at::IntArrayRef) -> torch::Tensor { throw std::logic_error("this method draws no noise"); };
}

}  // namespace

torch::Tensor run_result_batches(const VerbRunner& r, int64_t total, PerImageNoise* noise, const BatchFn& fn,
                                 const std::string& what) {
  if (!r.schedule || !r.eps) throw std::logic_error("run_result_batches: no schedule or model");
  torch::NoGradGuard ng;
  const int64_t bs = std::max<int64_t>(r.batch, 1);
  std::vector<torch::Tensor> outs;
  for (int64_t first = 0; first < total; first += bs) {
    const int64_t n = std::min(bs, total - first);
    const EpsModel eps = r.eps(n);
    const NoiseFn nf = noise ? noise->slice(first) : no_noise();
    StepCallback on_step;
    if (r.on_step) on_step = [&r, first, n, &what](int64_t i, int64_t steps) { r.on_step(first, n, i, steps, what); };
    outs.push_back(fn(first, n, eps, nf, on_step).to(torch::kCPU, torch::kFloat32));
  }
  return torch::cat(outs);
}

// ------------------------------------------------------------------------------------------------- inpaint --
int64_t inpaint_steps(const InpaintParams& p) {
  if (p.steps > 0) return p.steps;
  if (p.method == "repaint") return RePaintOptions{}.steps;
  if (p.method == "replace") return ReplaceOptions{}.steps;
  if (p.method == "ddnm") return DDNMOptions{}.steps;
  throw std::runtime_error("unknown inpainting method '" + p.method + "' (repaint | replace | ddnm)");
}

int64_t inpaint_nfe(const InpaintParams& p) {
  const int64_t steps = inpaint_steps(p);
  return p.method == "repaint" ? repaint_nfe(steps, p.jump_length, p.resample) : steps;
}

torch::Tensor inpaint_results(const VerbRunner& r, const torch::Tensor& y, const torch::Tensor& keep, int64_t K,
                              uint64_t seed, const InpaintParams& p) {
  const int64_t steps = inpaint_steps(p);
  const int64_t total = y.size(0) * K;
  PerImageNoise noise(seed, total);
  const auto x_T = noise.draw(0, {total, y.size(1), y.size(2), y.size(3)});  // [N·K,C,S,S]
  const auto keep_d = keep.to(r.device);
  const auto y_d = y.to(r.device);
  const MaskOperator op(keep_d);
  return run_result_batches(r, total, &noise, [&](int64_t first, int64_t n, const EpsModel& eps, const NoiseFn& nf,
                                                  const StepCallback& cb) {
    const auto xT = x_T.slice(0, first, first + n).to(r.device);
    const auto yb = y_d.index_select(0, inputs_of(first, n, K, r.device));
    if (p.method == "repaint") {
      RePaintOptions o;
      o.steps = steps;
      o.jump_length = p.jump_length;
      o.resample = p.resample;
      o.variance = p.variance;
      o.on_step = cb;
      return repaint_inpaint(*r.schedule, eps, xT, yb, keep_d, nf, o);
    }
    if (p.method == "replace") {
      ReplaceOptions o;
      o.steps = steps;
      o.variance = p.variance;
      o.on_step = cb;
      return replace_inpaint(*r.schedule, eps, xT, yb, keep_d, nf, o);
    }
    DDNMOptions o;
    o.steps = steps;
    o.eta = p.eta;
    o.on_step = cb;
    return ddnm_restore(*r.schedule, eps, xT, op, yb, nf, o);
  });
}

// ------------------------------------------------------------------------------------------------- upscale --
int64_t upscale_steps(const UpscaleParams& p) {
  if (p.steps > 0) return p.steps;
  if (p.method == "ddnm") return DDNMOptions{}.steps;
  if (p.method == "ilvr") return ILVROptions{}.steps;
  throw std::runtime_error("unknown super-resolution method '" + p.method + "' (ddnm | ilvr)");
}

torch::Tensor upscale_results(const VerbRunner& r, const torch::Tensor& y, int64_t K, uint64_t seed,
                              const UpscaleParams& p) {
  const int64_t steps = upscale_steps(p);
  const AvgPoolOperator op(p.factor);
  const int64_t total = y.size(0) * K, S = y.size(2) * p.factor;
  PerImageNoise noise(seed, total);
  const auto x_T = noise.draw(0, {total, y.size(1), S, S});
  const auto y_d = y.to(r.device);
  return run_result_batches(r, total, &noise, [&](int64_t first, int64_t n, const EpsModel& eps, const NoiseFn& nf,
                                                  const StepCallback& cb) {
    const auto xT = x_T.slice(0, first, first + n).to(r.device);
    const auto yb = y_d.index_select(0, inputs_of(first, n, K, r.device));
    if (p.method == "ddnm") {
      DDNMOptions o;
      o.steps = steps;
      o.eta = p.eta;
      o.on_step = cb;
      return ddnm_restore(*r.schedule, eps, xT, op, yb, nf, o);
    }
    ILVROptions o;
    o.steps = steps;
    o.variance = p.variance;
    o.on_step = cb;
    return ilvr_restore(*r.schedule, eps, xT, op, yb, nf, o);
  });
}

// ------------------------------------------------------------------------------------------------- denoise --
torch::Tensor noisy_inputs(const torch::Tensor& x, const std::vector<int64_t>& indices, uint64_t seed,
                           double sigma_model) {
  std::vector<torch::Tensor> z;
  for (auto idx : indices) {
    auto gen = make_generator(mix_seed(seed, static_cast<uint64_t>(idx), kStreamInputNoise));
    z.push_back(torch::randn({x.size(1), x.size(2), x.size(3)}, gen, torch::kFloat32));
  }
  return x + sigma_model * torch::stack(z);  // [N,C,S,S]
}

int64_t denoise_nfe(const Schedule& schedule, double sigma_model, int64_t steps) {
  const int64_t t_start = denoise_start(schedule, sigma_model);
  return static_cast<int64_t>(grid_from(t_start, steps > 0 ? steps : DenoiseOptions{}.steps).size());
}

torch::Tensor denoise_results(const VerbRunner& r, const torch::Tensor& y, double sigma_model, int64_t K,
                              uint64_t seed, int64_t steps, VarianceType variance) {
  const int64_t total = y.size(0) * K;
  PerImageNoise noise(seed, total);
  const auto y_d = y.to(r.device);
  return run_result_batches(r, total, &noise, [&](int64_t first, int64_t n, const EpsModel& eps, const NoiseFn& nf,
                                                  const StepCallback& cb) {
    const auto yb = y_d.index_select(0, inputs_of(first, n, K, r.device));
    DenoiseOptions o;
    o.steps = steps > 0 ? steps : DenoiseOptions{}.steps;
    o.variance = variance;
    o.on_step = cb;
    return denoise_known_sigma(*r.schedule, eps, yb, sigma_model, nf, o);
  });
}

// ---------------------------------------------------------------------------------------------------- edit --
torch::Tensor edit_results(const VerbRunner& r, const torch::Tensor& guide, const torch::Tensor& keep, int64_t K,
                           uint64_t seed, double strength, int64_t steps, VarianceType variance) {
  const int64_t total = guide.size(0) * K;
  PerImageNoise noise(seed, total);
  const auto guide_d = guide.to(r.device);
  const auto keep_d = keep.defined() ? keep.to(r.device) : keep;
  const int64_t n_steps = sdedit_steps(strength, steps);
  return run_result_batches(r, total, &noise, [&](int64_t first, int64_t n, const EpsModel& eps, const NoiseFn& nf,
                                                  const StepCallback& cb) {
    SDEditOptions o;
    o.strength = strength;
    o.steps = n_steps;
    o.keep = keep_d;
    o.variance = variance;
    o.on_step = cb;
    return sdedit(*r.schedule, eps, guide_d.index_select(0, inputs_of(first, n, K, r.device)), nf, o);
  });
}

// ------------------------------------------------------------------------------------------------ interpolate --
torch::Tensor interpolate_frames(const VerbRunner& r, const torch::Tensor& ends, int64_t frames, int64_t steps) {
  const int64_t n_steps = steps > 0 ? steps : InterpolateOptions{}.steps;
  const auto ends_d = ends.to(r.device);
  auto z = run_result_batches(r, 2, nullptr, [&](int64_t first, int64_t n, const EpsModel& eps, const NoiseFn&,
                                                 const StepCallback& cb) {
    return ddim_invert(*r.schedule, eps, ends_d.slice(0, first, first + n), n_steps, Spacing::Uniform, cb);
  }, "inverting");
  const auto latents = interpolation_latents(z.slice(0, 0, 1), z.slice(0, 1, 2), frames);  // [F,C,S,S]
  return run_result_batches(r, frames, nullptr, [&](int64_t first, int64_t n, const EpsModel& eps, const NoiseFn& nf,
                                                    const StepCallback& cb) {
    DDIMOptions o;
    o.steps = n_steps;
    o.eta = 0.0;
    o.clip_x0 = InterpolateOptions{}.clip_x0;
    o.on_step = cb;
    return ddim_sample(*r.schedule, eps, latents.slice(0, first, first + n).to(r.device), nf, o);
  }, "frames");
}

// ---------------------------------------------------------------------------------------------------- PSNR --
torch::Tensor first_results(const torch::Tensor& results, int64_t N, int64_t K) {
  return results.index_select(0, torch::arange(N, torch::kLong) * K);
}

void put_mean_se(nlohmann::json& j, const std::string& key, const torch::Tensor& per_image) {
  const auto m = mean_se(per_image);
  j[key] = m.mean;
  j[key + "_se"] = m.se;
}

void put_psnr(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
              const torch::Tensor& baseline_u8, const torch::Tensor& missing) {
  const int64_t N = truth_u8.size(0);
  const auto ref = unit_pixels_u8(truth_u8);
  const auto first = unit_pixels_u8(first_results(results_u8, N, K));
  const auto base = unit_pixels_u8(baseline_u8);
  auto all = [&](const std::string& suffix, const torch::Tensor& region) {
    put_mean_se(j, "psnr" + suffix, psnr(first, ref, region));
    if (K > 1) {
      auto mean = unit_pixels_u8(results_u8).view({N, K, ref.size(1), ref.size(2), ref.size(3)}).mean(1);
      put_mean_se(j, "psnr_posterior_mean" + suffix, psnr(mean, ref, region));
    }
    put_mean_se(j, "psnr_baseline" + suffix, psnr(base, ref, region));
  };
  all("", {});
  if (missing.defined()) all("_missing", missing);
}

torch::Tensor score_inpaint(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
                            const torch::Tensor& y, const torch::Tensor& keep) {
  j["baseline"] = "known-pixel mean fill (per image and channel)";
  auto baseline = to_uint8(known_mean_fill(y, keep));  // [N,C,S,S]
  put_psnr(j, results_u8, K, truth_u8, baseline, 1.0 - keep);
  return baseline;
}

torch::Tensor score_upscale(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
                            const torch::Tensor& y, int64_t factor) {
  j["baseline"] = "bicubic upsampling (align_corners=false, clamped)";
  auto baseline = to_uint8(bicubic_upscale(y, factor));  // [N,C,S,S]
  put_psnr(j, results_u8, K, truth_u8, baseline);
  return baseline;
}

torch::Tensor score_denoise(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
                            const torch::Tensor& y, const torch::Tensor& x) {
  const auto blur = best_gaussian_blur(y, x);
  j["baseline"] = "gaussian blur, std oracle-tuned on the inputs' own ground truth (searched 0.3..3 px)";
  j["baseline_blur_px"] = blur.sigma_px;
  auto baseline = to_uint8(blur.images);  // [N,C,S,S]
  put_psnr(j, results_u8, K, truth_u8, baseline);
  put_mean_se(j, "psnr_input", psnr(unit_pixels_u8(to_uint8(y)), unit_pixels_u8(truth_u8)));
  return baseline;
}

}  // namespace ddpm
