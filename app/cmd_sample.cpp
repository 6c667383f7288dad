// cmd_sample.cpp — `ddpm sample`: load a checkpoint (EMA weights), run a sampler, write a grid and/or PNGs.
#include "commands.h"

#include "ddpm/data/data.h"
#include "ddpm/data/image_set.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/image_io.h"
#include "ddpm/samplers/generate.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <utility>

namespace ddpm::app {
namespace fs = std::filesystem;
namespace {
struct SampleArgs {
  std::string checkpoint, sampler = "ddpm", out, out_dir, format = "grid", device = "auto", variance, spacing, klass;
  int64_t num = 64, steps = 0, nrow = 0, scale = 1, batch_size = 0, threads = 0;
  double eta = 0, guidance = 0, rho = 7;
  SamplerOptions sde;  // edm-sde and pc options (their defaults: registry.h)
  std::string predictor = "reverse-diffusion";
  uint64_t seed = 0;
  bool no_clip = false, force_precision = false;
  std::string precision = "fp32";
  std::string weights = "ema";
};
constexpr int64_t kPerClassDefault = 8;
}  // namespace

Command add_sample(CLI::App& root) {
  auto a = std::make_shared<SampleArgs>();
  auto* c = root.add_subcommand("sample", "Generate images from a checkpoint");
  c->option_defaults()->always_capture_default();
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint or weights file (.safetensors)")->required();
  c->add_option("--sampler", a->sampler,
                "ddpm (ancestral) | ddim | dpm++2m | dpm++3m | euler | heun | edm-sde | vp-sde | pc "
                "(heun and edm-sde cost 2·steps−1 NFE, pc steps + M·(steps−1))")
      ->check(CLI::IsMember(sampler_names()));
  auto* o_num = c->add_option("--num", a->num, "Number of images (with --class all: a multiple of the classes; default 8 per class)")
                    ->check(CLI::PositiveNumber);
  c->add_option("--seed", a->seed, "Seed: the same seed gives the same images");
  c->add_option("--steps", a->steps,
                "Sampler steps; 0 = the sampler's default (ddpm/vp-sde/pc: T, ddim/euler: 50, dpm++: 20, heun/edm-sde: 18)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--eta", a->eta, "DDIM η: 0 deterministic, 1 DDPM-like noise")->check(CLI::NonNegativeNumber);
  c->add_option("--spacing", a->spacing,
                "Where the model is evaluated: uniform | trailing | quadratic | logsnr | karras "
                "(default: ddpm/ddim/vp-sde/pc uniform, dpm++ logsnr, euler/heun/edm-sde karras)")
      ->check(CLI::IsMember({"uniform", "trailing", "quadratic", "logsnr", "karras"}));
  auto* o_rho = c->add_option("--rho", a->rho, "ρ of the karras spacing")->check(CLI::PositiveNumber);
  // edm-sde (EDM Algorithm 2) and pc (Song et al. 2021, Algorithms 3 and 5): checked by check_sampler_options.
  const std::vector<CLI::Option*> edm_opts = {
      c->add_option("--s-churn", a->sde.s_churn, "edm-sde: S_churn ≥ 0, total churn (γ_i = min(S_churn/steps, √2−1)); 0 = heun"),
      c->add_option("--s-tmin", a->sde.s_tmin, "edm-sde: churn only where σ ≥ S_tmin"),
      c->add_option("--s-tmax", a->sde.s_tmax, "edm-sde: churn only where σ ≤ S_tmax (inf allowed)"),
      c->add_option("--s-noise", a->sde.s_noise, "edm-sde: S_noise ≥ 0, scale of the churn noise")};
  const std::vector<CLI::Option*> pc_opts = {
      c->add_option("--corrector-steps", a->sde.corrector_steps, "pc: Langevin corrector steps M after each predictor step"),
      c->add_option("--snr", a->sde.snr, "pc: target signal-to-noise ratio r > 0 of the corrector's step size"),
      c->add_option("--predictor", a->predictor, "pc: reverse-diffusion | ancestral")
          ->check(CLI::IsMember({"reverse-diffusion", "ancestral"}))};
  c->add_option("--variance", a->variance, "ddpm: fixed_large (σ²=β_t) | fixed_small (σ²=β̃_t); default: the model's")
      ->check(CLI::IsMember({"fixed_large", "fixed_small"}));
  c->add_flag("--no-clip", a->no_clip, "Do not clip the predicted x_0 to [-1, 1]");
  c->add_option("--class", a->klass, "Class-conditional models: a class index, or 'all' for one grid row per class "
                                     "(default: unconditional, the null class)");
  c->add_option("--guidance", a->guidance, "Classifier-free guidance w: ε = (1+w)·ε(x,c) − w·ε(x,∅); 0 = none")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--out", a->out, "File to write: the grid PNG (default samples.png unless --out-dir is given), or "
                                 "with --format npz the .npz (default samples.npz)");
  c->add_option("--format", a->format, "grid: --out is one PNG of all images | npz: --out is an .npz, arr_0 uint8 "
                                       "[N,H,W,C] (+ arr_1 labels), the layout `ddpm eval` and other evaluators read")
      ->check(CLI::IsMember({"grid", "npz"}));
  c->add_option("--out-dir", a->out_dir, "Directory for one PNG per image (000000.png, ...)");
  c->add_option("--nrow", a->nrow, "Images per grid row (default: square; per class with --class all)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--scale", a->scale, "Enlarge the grid by this integer factor (nearest neighbour)")->check(CLI::PositiveNumber);
  c->add_option("--batch-size", a->batch_size, "Images per forward pass (0: 64 — constant memory whatever --num; the images do not depend on it)")->check(CLI::NonNegativeNumber);
  c->add_option("--device", a->device, "auto | cpu | cuda");
  c->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);
  add_precision_options(c, a->precision, a->force_precision);
  c->add_option("--weights", a->weights,
                "ema (the EMA weights, or the training weights of a file without them) | raw (the training weights "
                "of a run checkpoint, to see what the EMA adds)")
      ->check(CLI::IsMember({"ema", "raw"}));

  auto run = [=]() -> int {
    const bool npz = a->format == "npz";
    if (a->out.empty() && (a->out_dir.empty() || npz)) a->out = npz ? "samples.npz" : "samples.png";
    if (!a->out.empty()) ensure_writable_parent(a->out, "--out");
    const auto ck = load_checkpoint(a->checkpoint);
    const auto& cfg = ck.config;
    const auto& m = cfg.model;
    const int64_t K = m.num_classes;

    GenerateOptions g;
    g.sampler.name = a->sampler;
    g.sampler.steps = a->steps;
    g.sampler.eta = a->eta;
    if (!a->spacing.empty()) g.sampler.spacing = parse_spacing(a->spacing);
    g.sampler.rho = a->rho;
    g.sampler.s_churn = a->sde.s_churn, g.sampler.s_tmin = a->sde.s_tmin, g.sampler.s_tmax = a->sde.s_tmax;
    g.sampler.s_noise = a->sde.s_noise;
    g.sampler.corrector_steps = a->sde.corrector_steps, g.sampler.snr = a->sde.snr;
    g.sampler.predictor = parse_pc_predictor(a->predictor);
    for (const auto& [opts, owner] : {std::pair{&edm_opts, "edm-sde"}, std::pair{&pc_opts, "pc"}})
      for (auto* o : *opts)
        if (o->count() && a->sampler != owner)
          throw std::runtime_error(o->get_name() + " applies to the " + owner + " sampler only");
    g.sampler.variance = parse_variance_type(a->variance.empty() ? cfg.diffusion.variance : a->variance);
    g.sampler.clip_x0 = !a->no_clip;
    if (o_rho->count() && sampler_spacing(g.sampler) != Spacing::Karras)
      throw std::runtime_error("--rho applies to the karras spacing only (here: " + to_string(sampler_spacing(g.sampler)) + ")");
    check_sampler_options(g.sampler, cfg.diffusion.timesteps);
    g.guidance = a->guidance;
    g.seed = a->seed;
    g.num = a->num;
    g.batch_size = a->batch_size;
    int64_t nrow = a->nrow;
    if (!a->klass.empty()) {
      if (K == 0) throw std::runtime_error("--class: " + a->checkpoint + " is an unconditional model (num_classes = 0)");
      if (a->klass == "all") {
        if (o_num->count() && a->num % K != 0)
          throw std::runtime_error("--num " + std::to_string(a->num) + " with --class all must be a multiple of the " +
                                   std::to_string(K) + " classes");
        const int64_t per = o_num->count() ? a->num / K : kPerClassDefault;
        g.labels = class_rows(K, per);
        g.num = K * per;
        if (nrow == 0) nrow = per;
      } else {
        int64_t y = -1;
        try {
          size_t used = 0;
          y = std::stoll(a->klass, &used);
          if (used != a->klass.size()) y = -1;
        } catch (const std::exception&) {
        }
        if (y < 0 || y >= K)
          throw std::runtime_error("--class '" + a->klass + "': expected 'all' or a class index in [0, " +
                                   std::to_string(K - 1) + "]");
        g.labels.assign(static_cast<size_t>(g.num), y);
      }
    }
    if (a->guidance != 0 && K == 0)
      throw std::runtime_error("--guidance needs a class-conditional model; " + a->checkpoint + " has num_classes = 0");

    const auto device = resolve_device(a->device);
    const int threads = set_threads(a->threads);
    const auto precision = parse_precision(a->precision);
    check_precision(precision, device, a->force_precision);
    if (!a->out_dir.empty()) ensure_writable_dir(a->out_dir, "--out-dir");
    auto net = load_sampling_model(ck, device, precision, a->weights == "raw");
    const int64_t T = cfg.diffusion.timesteps;
    const int64_t steps = sampler_steps(g.sampler, T), nfe = sampler_nfe(g.sampler, T);
    const int64_t nfe_pass = nfe * (g.guidance != 0 ? 2 : 1);  // guidance runs each image twice per evaluation

    const bool tty = stderr_is_tty();
    const auto t0 = std::chrono::steady_clock::now();
    g.on_progress = [&](int64_t start, int64_t n, int64_t i, int64_t total) {
      if (!tty) return;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cerr << "\r\033[Kimages " << start << "-" << start + n << "/" << g.num << " | step " << i << "/" << total
                << " | " << std::fixed << std::setprecision(1) << el << " s" << std::flush;
    };
    std::cerr << "sampling " << g.num << " images with " << a->sampler << ", " << steps << " steps (" << nfe
              << " NFE per image" << (g.guidance != 0 ? ", ×2 batch for guidance" : "") << "), step " << ck.step
              << " weights, " << cfg.diffusion.prediction << "-prediction, device " << device.str() << ", "
              << a->precision << ", threads "
              << threads << "\n";
    auto images = to_uint8(generate(net, cfg, g));  // [N,C,H,W] uint8
    if (tty) std::cerr << "\n";
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    if (npz) {
      save_image_npz(a->out, images, g.labels.empty() ? torch::Tensor() : torch::tensor(g.labels, torch::kLong));
    } else if (!a->out.empty()) {
      if (nrow == 0) nrow = static_cast<int64_t>(std::ceil(std::sqrt(double(g.num))));
      save_png(a->out, upscale(make_grid(images, nrow), a->scale));
    }
    if (!a->out_dir.empty()) {
      for (int64_t i = 0; i < g.num; ++i) {
        std::ostringstream name;
        name << std::setw(6) << std::setfill('0') << i << ".png";
        save_png((fs::path(a->out_dir) / name.str()).string(), images[i]);
      }
    }
    nlohmann::json j = {{"sampler", a->sampler}, {"steps", steps},      {"nfe", nfe},
                        {"num", g.num},          {"seed", a->seed},     {"seconds", secs},
                        {"seconds_per_image", secs / static_cast<double>(g.num)},
                        {"prediction", cfg.diffusion.prediction}, {"weights", a->weights}};
    if (a->sampler == "ddpm") j["variance"] = to_string(g.sampler.variance);
    if (a->sampler == "ddim") j["eta"] = a->eta;
    if (a->sampler == "edm-sde") {
      j["s_churn"] = a->sde.s_churn, j["s_tmin"] = a->sde.s_tmin, j["s_noise"] = a->sde.s_noise;
      j["s_tmax"] = std::isfinite(a->sde.s_tmax) ? nlohmann::json(a->sde.s_tmax) : nlohmann::json("inf");
    }
    if (a->sampler == "pc") {
      j["corrector_steps"] = a->sde.corrector_steps, j["snr"] = a->sde.snr;
      j["predictor"] = a->predictor;
    }
    j["spacing"] = to_string(sampler_spacing(g.sampler));
    if (sampler_spacing(g.sampler) == Spacing::Karras) j["rho"] = a->rho;
    if (!a->klass.empty()) j["class"] = a->klass;
    if (K > 0) j["guidance"] = a->guidance;
    if (nfe_pass != nfe) j["forward_images_per_image"] = nfe_pass;
    if (!a->out.empty()) j[npz ? "npz" : "grid"] = a->out;
    if (!a->out_dir.empty()) j["out_dir"] = a->out_dir;
    std::cout << j.dump() << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
