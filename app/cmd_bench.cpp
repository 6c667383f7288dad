// cmd_bench.cpp — `ddpm bench`: throughput of a preset as one JSON object.
//   train:  full training steps (forward, backward, clipping, Adam, EMA) on synthetic data -> images_per_sec
//   sample: no-grad forward passes of the network at a batch -> image_nfe_per_sec
// GFLOP/s counts the network's analytic forward FLOPs (×3 for a training step: forward + backward).
#include "commands.h"

#include "ddpm/nn/winograd_bf16.h"
#include "ddpm/nn/winograd_conv.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/cpu_features.h"
#include "ddpm/util/runtime.h"

#include <torch/version.h>
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define DDPM_HAVE_RECORD_PROFILE 1
#endif

#include <chrono>
#include <iostream>
#include <memory>

namespace ddpm::app {
namespace {
struct BenchArgs {
  std::string preset = "fmnist", mode = "train", device = "auto", precision = "fp32", layout = "auto";
  bool force_precision = false;
  std::string profile;
  int64_t batch_size = 64, iters = 10, warmup = 2, threads = 0;
};
}  // namespace

Command add_bench(CLI::App& root) {
  auto a = std::make_shared<BenchArgs>();
  auto* c = root.add_subcommand("bench", "Measure training or sampling throughput of a preset; prints JSON");
  c->option_defaults()->always_capture_default();
  c->add_option("--preset", a->preset, "Model preset");
  c->add_option("--mode", a->mode, "train | sample")->check(CLI::IsMember({"train", "sample"}));
  c->add_option("--batch-size", a->batch_size, "Batch size")->check(CLI::PositiveNumber);
  c->add_option("--iters", a->iters, "Timed iterations")->check(CLI::PositiveNumber);
  c->add_option("--warmup", a->warmup, "Untimed iterations first")->check(CLI::NonNegativeNumber);
  c->add_option("--device", a->device, "auto | cpu | cuda");
  c->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);
  add_precision_options(c, a->precision, a->force_precision);
  c->add_option("--profile", a->profile, "Write a Chrome trace of the timed iterations (per-op times) to this file");
  c->add_option("--layout", a->layout, "Activation layout: auto (bf16 on a CPU: NHWC, else NCHW) | nchw | nhwc")
      ->check(CLI::IsMember({"auto", "nchw", "nhwc"}));
  auto run = [=]() -> int {
    Config cfg;
    cfg.model = preset_model(a->preset);
    cfg.preset = a->preset;
    cfg.train.batch_size = a->batch_size;
    cfg.train.precision = a->precision;
    const auto device = resolve_device(a->device);
    const auto precision = parse_precision(a->precision);
    check_precision(precision, device, a->force_precision);
    const int threads = set_threads(a->threads);
    const auto& m = cfg.model;
    Dataset synth;
    synth.name = "synthetic";
    synth.images = torch::randint(0, 256, {std::max<int64_t>(a->batch_size, 256), m.channels, m.image_size, m.image_size},
                                  torch::kUInt8);
    Trainer trainer(cfg, synth, device);
    auto mode = compute_mode_for(precision, device);
    if (a->layout != "auto") mode.channels_last = a->layout == "nhwc";
    trainer.model()->set_compute(mode);
    trainer.ema()->set_compute(mode);
    const double fwd_flops = trainer.model()->forward_flops_per_image();
    auto sync = [&] {
      if (device.is_cuda()) torch::cuda::synchronize();
    };
    using clock = std::chrono::steady_clock;
#ifdef DDPM_HAVE_RECORD_PROFILE
    std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
    auto start_profile = [&] {
      if (!a->profile.empty()) prof = std::make_unique<torch::autograd::profiler::RecordProfile>(a->profile);
    };
#else
    auto start_profile = [&] {
      if (!a->profile.empty()) throw std::runtime_error("--profile: this LibTorch has no legacy profiler");
    };
#endif
    double secs = 0;
    if (a->mode == "train") {
      for (int64_t i = 0; i < a->warmup; ++i) trainer.train_step();
      sync();
      start_profile();
      const auto t0 = clock::now();
      for (int64_t i = 0; i < a->iters; ++i) trainer.train_step();
      sync();
      secs = std::chrono::duration<double>(clock::now() - t0).count();
    } else {
      torch::NoGradGuard ng;
      auto net = trainer.ema();
      auto x = torch::randn({a->batch_size, m.channels, m.image_size, m.image_size}).to(device);
      auto t = torch::randint(0, cfg.diffusion.timesteps, {a->batch_size}, torch::kLong).to(device);
      for (int64_t i = 0; i < a->warmup; ++i) net->forward(x, t);
      sync();
      start_profile();
      const auto t0 = clock::now();
      for (int64_t i = 0; i < a->iters; ++i) net->forward(x, t);
      sync();
      secs = std::chrono::duration<double>(clock::now() - t0).count();
    }
#ifdef DDPM_HAVE_RECORD_PROFILE
    prof.reset();  // writes the trace
#endif
    const double images = static_cast<double>(a->batch_size * a->iters);
    const double flops = images * fwd_flops * (a->mode == "train" ? 3.0 : 1.0);
    nlohmann::json j = {{"preset", a->preset},
                        {"mode", a->mode},
                        {"device", device.str()},
                        {"threads", threads},
                        {"batch_size", a->batch_size},
                        {"iters", a->iters},
                        {"seconds", secs},
                        {"parameters", count_parameters(*trainer.model())},
                        {"gflops_per_sec", flops / secs / 1e9},
                        {"precision", a->precision},
                        {"layout", mode.channels_last ? "nhwc" : "nchw"},
                        {"cpu", cpu_features().model},
                        {"isa", cpu_features().list()},
                        {"fp32_train_conv3x3", winograd_available() ? "winograd" : "direct"},
                        {"bf16_conv3x3", winograd_bf16_available() ? "winograd_f2" : "direct"},
                        {"torch_version", TORCH_VERSION}};
    j[a->mode == "train" ? "images_per_sec" : "image_nfe_per_sec"] = images / secs;
    std::cout << j.dump() << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
