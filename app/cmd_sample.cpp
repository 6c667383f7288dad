// cmd_sample.cpp — `ddpm sample`: load a checkpoint (EMA weights), run the sampler, write a grid and/or PNGs.
#include "commands.h"

#include "ddpm/checkpoint.h"
#include "ddpm/data.h"
#include "ddpm/image_io.h"
#include "ddpm/runtime.h"
#include "ddpm/samplers/ddpm_sampler.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace ddpm::app {
namespace fs = std::filesystem;
namespace {
struct SampleArgs {
  std::string checkpoint, sampler = "ddpm", out, out_dir, device = "auto", variance;
  int64_t num = 64, steps = 0, nrow = 0, scale = 1, batch_size = 0, threads = 0;
  uint64_t seed = 0;
  bool no_clip = false;
};
}  // namespace

Command add_sample(CLI::App& root) {
  auto a = std::make_shared<SampleArgs>();
  auto* c = root.add_subcommand("sample", "Generate images from a checkpoint");
  c->option_defaults()->always_capture_default();
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint or weights file (.safetensors)")->required();
  c->add_option("--sampler", a->sampler, "Sampler: ddpm (ancestral, Algorithm 2)")->check(CLI::IsMember({"ddpm"}));
  c->add_option("--num", a->num, "Number of images")->check(CLI::PositiveNumber);
  c->add_option("--seed", a->seed, "Seed: the same seed gives the same images");
  c->add_option("--steps", a->steps, "Reverse steps (respaced); 0 = all T of the model")->check(CLI::NonNegativeNumber);
  c->add_option("--variance", a->variance, "fixed_large (σ²=β_t) | fixed_small (σ²=β̃_t); default: the model's")
      ->check(CLI::IsMember({"fixed_large", "fixed_small"}));
  c->add_flag("--no-clip", a->no_clip, "Do not clip the predicted x_0 to [-1, 1]");
  c->add_option("--out", a->out, "Grid PNG to write (default samples.png unless --out-dir is given)");
  c->add_option("--out-dir", a->out_dir, "Directory for one PNG per image (000000.png, ...)");
  c->add_option("--nrow", a->nrow, "Images per grid row (default: square)")->check(CLI::NonNegativeNumber);
  c->add_option("--scale", a->scale, "Enlarge the grid by this integer factor (nearest neighbour)")->check(CLI::PositiveNumber);
  c->add_option("--batch-size", a->batch_size, "Images per forward pass (default: all at once)")->check(CLI::NonNegativeNumber);
  c->add_option("--device", a->device, "auto | cpu | cuda");
  c->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);

  auto run = [=]() -> int {
    if (a->out.empty() && a->out_dir.empty()) a->out = "samples.png";
    if (!a->out.empty()) ensure_writable_parent(a->out, "--out");
    const auto ck = load_checkpoint(a->checkpoint);
    const auto device = resolve_device(a->device);
    const int threads = set_threads(a->threads);
    if (!a->out_dir.empty()) ensure_writable_dir(a->out_dir, "--out-dir");
    auto net = load_sampling_model(ck, device);
    const Schedule schedule(parse_beta_schedule(ck.config.diffusion.schedule), ck.config.diffusion.timesteps);
    DDPMSamplerOptions opts;
    opts.steps = a->steps;
    if (opts.steps > schedule.T)
      throw std::runtime_error("--steps " + std::to_string(opts.steps) + " exceeds the model's T = " + std::to_string(schedule.T));
    opts.variance = parse_variance_type(a->variance.empty() ? ck.config.diffusion.variance : a->variance);
    opts.clip_x0 = !a->no_clip;
    const int64_t S = opts.steps == 0 ? schedule.T : opts.steps;
    const bool tty = stderr_is_tty();

    const auto& m = ck.config.model;
    // Each image has its own noise stream: the images do not depend on --batch-size (or --num for the first ones).
    PerImageNoise noise(a->seed, a->num);
    auto x_T = noise.draw(0, {a->num, m.channels, m.image_size, m.image_size});  // [N,C,H,W]
    const int64_t bs = a->batch_size > 0 ? a->batch_size : a->num;
    std::vector<torch::Tensor> outs;
    torch::NoGradGuard ng;
    EpsModel eps = [&](const torch::Tensor& x, const torch::Tensor& t) { return net->forward(x, t); };
    const auto t0 = std::chrono::steady_clock::now();
    std::cerr << "sampling " << a->num << " images with ddpm, " << S << " steps, " << to_string(opts.variance)
              << " variance, step " << ck.step << " weights, device " << device.str() << ", threads " << threads << "\n";
    for (int64_t start = 0; start < a->num; start += bs) {
      const int64_t n = std::min(bs, a->num - start);
      opts.on_step = [&](int64_t i, int64_t total) {
        if (!tty) return;
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::cerr << "\r\033[Kimages " << start << "-" << start + n << "/" << a->num << " | step " << i << "/" << total
                  << " | " << std::fixed << std::setprecision(1) << el << " s" << std::flush;
      };
      outs.push_back(ddpm_sample(schedule, eps, x_T.slice(0, start, start + n).to(device), noise.slice(start), opts).cpu());
    }
    if (tty) std::cerr << "\n";
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto images = to_uint8(torch::cat(outs, 0));  // [N,C,H,W] uint8

    if (!a->out.empty()) {
      const int64_t nrow = a->nrow > 0 ? a->nrow : static_cast<int64_t>(std::ceil(std::sqrt(double(a->num))));
      save_png(a->out, upscale(make_grid(images, nrow), a->scale));
    }
    if (!a->out_dir.empty()) {
      for (int64_t i = 0; i < a->num; ++i) {
        std::ostringstream name;
        name << std::setw(6) << std::setfill('0') << i << ".png";
        save_png((fs::path(a->out_dir) / name.str()).string(), images[i]);
      }
    }
    nlohmann::json j = {{"sampler", a->sampler}, {"steps", S}, {"nfe", S}, {"num", a->num},
                        {"seed", a->seed}, {"seconds", secs}, {"variance", to_string(opts.variance)}};
    if (!a->out.empty()) j["grid"] = a->out;
    if (!a->out_dir.empty()) j["out_dir"] = a->out_dir;
    std::cout << j.dump() << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
