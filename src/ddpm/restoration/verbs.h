// verbs.h — the compute core of each restoration verb, shared by `ddpm inpaint|upscale|denoise|edit|interpolate`
// (app/cmd_restore.cpp) and the server's jobs (serve/), so that the same request gives the same images bit for
// bit: the per-result noise streams, the batching of (input, result) pairs, each method's options and default
// steps, the noisy inputs of ground-truth images, and the PSNR fields. Not here: the methods themselves (their
// own files), parsing flags or JSON fields and their errors, reading or writing files.
//
// Inputs are in the model range [-1, 1]; N inputs with K results each give N·K results, input by input
// (pair p = i·K + k); result p draws its x_T and all its noise from its own stream (seed, p) (PerImageNoise), so
// a result does not depend on the batch size or on the other inputs.
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/restoration/ddnm.h"
#include "ddpm/restoration/repaint.h"
#include "ddpm/samplers/sampler.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ddpm {

// What a verb runs on: the schedule, the device, the batch and the ε-model of a batch.
struct VerbRunner {
  const Schedule* schedule = nullptr;
  torch::Device device = torch::kCPU;
  int64_t batch = 64;                          // results per forward pass (the results do not depend on it)
  std::function<EpsModel(int64_t n)> eps;      // the ε-model of a batch of n results (labels, guidance)
  // Progress of the batch [first, first + n): (first, n, step, steps, what: "results" | "inverting" | "frames").
  std::function<void(int64_t first, int64_t n, int64_t step, int64_t steps, const std::string& what)> on_step;
};

// fn(first pair, n pairs, ε-model of the batch, the noise of pairs [first, first + n), progress) -> [n,C,H,W].
using BatchFn = std::function<torch::Tensor(int64_t first, int64_t n, const EpsModel& eps, const NoiseFn& noise,
                                            const StepCallback& on_step)>;
// Runs fn over `total` pairs in batches of r.batch, under NoGradGuard. noise null: the method draws none.
// -> [total,C,H,W] float32 on the CPU.
torch::Tensor run_result_batches(const VerbRunner& r, int64_t total, PerImageNoise* noise, const BatchFn& fn,
                                 const std::string& what = "results");

// ---- inpaint: repaint | replace | ddnm
struct InpaintParams {
  std::string method = "repaint";
  int64_t steps = 0;                 // 0: the method's default
  int64_t jump_length = RePaintOptions{}.jump_length, resample = RePaintOptions{}.resample;  // repaint
  double eta = DDNMOptions{}.eta;    // ddnm
  VarianceType variance = VarianceType::FixedSmall;  // repaint, replace
};
int64_t inpaint_steps(const InpaintParams& p);  // the default applied
int64_t inpaint_nfe(const InpaintParams& p);    // model calls per result
// y = x·keep [N,C,S,S] (missing pixels 0), keep [1,1,S,S] (1 = known) -> [N·K,C,S,S]
torch::Tensor inpaint_results(const VerbRunner& r, const torch::Tensor& y, const torch::Tensor& keep, int64_t K,
                              uint64_t seed, const InpaintParams& p);

// ---- upscale: ddnm | ilvr, K×K average pooling as the degradation
struct UpscaleParams {
  std::string method = "ddnm";
  int64_t factor = 2;
  int64_t steps = 0;
  double eta = DDNMOptions{}.eta;                    // ddnm
  VarianceType variance = VarianceType::FixedSmall;  // ilvr
};
int64_t upscale_steps(const UpscaleParams& p);
// y [N,C,S/f,S/f] -> [N·K,C,S,S]
torch::Tensor upscale_results(const VerbRunner& r, const torch::Tensor& y, int64_t K, uint64_t seed,
                              const UpscaleParams& p);

// ---- denoise: the known-σ reverse chain. sigma_model is the noise std in model units (2 × the [0, 1] std).
// Ground-truth images x [N,C,S,S] plus σ′·n, n drawn per dataset index from its own stream (seed, index): the
// same image gets the same noise whatever else is chosen. Not clamped (the noise model y = x + σ′n).
torch::Tensor noisy_inputs(const torch::Tensor& x, const std::vector<int64_t>& indices, uint64_t seed,
                           double sigma_model);
int64_t denoise_nfe(const Schedule& schedule, double sigma_model, int64_t steps);  // steps 0: the default
// y [N,C,S,S] -> [N·K,C,S,S]
torch::Tensor denoise_results(const VerbRunner& r, const torch::Tensor& y, double sigma_model, int64_t K,
                              uint64_t seed, int64_t steps, VarianceType variance);

// ---- edit: SDEdit from guides [N,C,S,S], keep [1,1,S,S] or undefined (change everything) -> [N·K,C,S,S]
torch::Tensor edit_results(const VerbRunner& r, const torch::Tensor& guide, const torch::Tensor& keep, int64_t K,
                           uint64_t seed, double strength, int64_t steps, VarianceType variance);

// ---- interpolate: DDIM inversion of ends [2,C,S,S], slerp, η = 0 sampling back -> [frames,C,S,S]
torch::Tensor interpolate_frames(const VerbRunner& r, const torch::Tensor& ends, int64_t frames, int64_t steps);

// ---- PSNR fields of a verb with ground truth (uint8 images): psnr (first result of each input),
// psnr_posterior_mean (the mean of the K results, K > 1), psnr_baseline, each with _se; with `missing`
// [1,1,S,S] also on that region alone (suffix _missing).
void put_psnr(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
              const torch::Tensor& baseline_u8, const torch::Tensor& missing = {});
// Each verb's classical baseline and PSNR fields against ground truth truth_u8 [N,C,S,S] (results_u8 [N·K,C,S,S]):
// j["baseline"] names the baseline, put_psnr fills the fields; returns the baseline images uint8 [N,C,S,S].
// The CLI and the server both call these, so a job and its command line report the same numbers.
// inpaint: the known-pixel mean fill of y = x·keep [N,C,S,S] (model range), also scored on the missing region.
torch::Tensor score_inpaint(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
                            const torch::Tensor& y, const torch::Tensor& keep);
// upscale: bicubic upsampling of the low-resolution y [N,C,S/f,S/f] (model range) by `factor`.
torch::Tensor score_upscale(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
                            const torch::Tensor& y, int64_t factor);
// denoise: the Gaussian blur whose std (0.3..3 px) maximises the mean PSNR of noisy y against clean x (both
// model range [N,C,S,S]) — an oracle-tuned baseline; also j["baseline_blur_px"] and psnr_input (the noisy y).
torch::Tensor score_denoise(nlohmann::json& j, const torch::Tensor& results_u8, int64_t K, const torch::Tensor& truth_u8,
                            const torch::Tensor& y, const torch::Tensor& x);
// j[key] = mean, j[key + "_se"] = standard error of per-image values [N].
void put_mean_se(nlohmann::json& j, const std::string& key, const torch::Tensor& per_image);
// The first result of every input: rows 0, K, 2K, ... of [N·K, ...].
torch::Tensor first_results(const torch::Tensor& results, int64_t N, int64_t K);

}  // namespace ddpm
