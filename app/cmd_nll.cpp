// cmd_nll.cpp — `ddpm nll`: negative log-likelihood in bits/dim, the variational bound of likelihood.h over a
// dataset split, with its standard error over images.
#include "commands.h"

#include "ddpm/data/data.h"
#include "ddpm/diffusion/likelihood.h"
#include "ddpm/diffusion/prediction.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>

namespace ddpm::app {
namespace {
struct NllArgs {
  std::string checkpoint, data, variance, json, device = "auto";
  int64_t num = 1000, timesteps = 0, batch_size = 100, threads = 0;
  uint64_t seed = 0;
  bool no_clip = false, conditional = false;
};
}  // namespace

Command add_nll(CLI::App& root) {
  auto a = std::make_shared<NllArgs>();
  auto* c = root.add_subcommand("nll", "Negative log-likelihood (variational bound) in bits/dim over a dataset split");
  c->option_defaults()->always_capture_default();
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint or weights file (.safetensors)")->required();
  c->add_option("--data", a->data, "Dataset spec (default: the test split of the model's training data)");
  c->add_option("--num", a->num, "Images: the first N of the split (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--timesteps", a->timesteps,
                "KL terms evaluated: 0 = all T−1 (the bound); K < T−1 = an unbiased stratified estimate: K strata "
                "of consecutive timesteps, one drawn at random per stratum and image")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--variance", a->variance, "fixed_large | fixed_small (default: the model's)")
      ->check(CLI::IsMember({"fixed_large", "fixed_small"}));
  c->add_flag("--no-clip", a->no_clip, "Do not clip the predicted x_0 to [-1, 1]");
  c->add_flag("--conditional", a->conditional, "Class-conditional models: condition on the dataset's labels "
                                               "(default: the unconditional model, the null label)");
  c->add_option("--batch-size", a->batch_size, "Images per forward pass")->check(CLI::PositiveNumber);
  c->add_option("--seed", a->seed, "Seed of the noise that draws each x_t");
  c->add_option("--json", a->json, "Also write the result to this JSON file");
  c->add_option("--device", a->device, "auto | cpu | cuda");
  c->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);

  auto run = [=]() -> int {
    if (!a->json.empty()) ensure_writable_parent(a->json, "--json");
    const auto ck = load_checkpoint(a->checkpoint);
    const auto& cfg = ck.config;
    std::string spec = a->data;
    if (spec.empty()) spec = test_split_of(cfg.train.data, "--data");
    auto data = load_dataset(spec);
    check_dataset_matches(data, cfg.model);
    const int64_t N = a->num > 0 ? std::min(a->num, data.size()) : data.size();
    const int64_t K = cfg.model.num_classes;
    if (a->conditional && (K == 0 || !data.labels.defined()))
      throw std::runtime_error(K == 0 ? "--conditional: " + a->checkpoint + " is an unconditional model"
                                      : "--conditional: " + spec + " has no labels");
    const auto device = resolve_device(a->device);
    const int threads = set_threads(a->threads);
    auto net = load_sampling_model(ck, device);
    const Schedule sched(parse_beta_schedule(cfg.diffusion.schedule), cfg.diffusion.timesteps);
    const auto pred = parse_prediction(cfg.diffusion.prediction);
    const auto variance = parse_variance_type(a->variance.empty() ? cfg.diffusion.variance : a->variance);
    const auto ts = vb_strata(sched.T, a->timesteps);
    const bool estimate = static_cast<int64_t>(ts.size()) < sched.T - 1;
    std::cerr << "bits/dim of " << N << " images of " << spec << ": " << ts.size() << " KL terms"
              << (estimate ? " (a stratified estimate of the " + std::to_string(sched.T - 1) + "-term sum)" : "")
              << " + prior + decoder, " << to_string(variance) << ", device " << device.str() << ", threads " << threads
              << "\n";
    torch::NoGradGuard ng;
    auto gen = make_generator(a->seed);
    NoiseFn noise = generator_noise(gen);
    std::vector<torch::Tensor> bpd, prior, kl, dec;
    const auto t0 = std::chrono::steady_clock::now();
    const bool tty = stderr_is_tty();
    for (int64_t i = 0; i < N; i += a->batch_size) {
      const int64_t n = std::min(a->batch_size, N - i);
      auto x0 = to_model_range(data.images.narrow(0, i, n)).to(device);  // [n,C,H,W]
      torch::Tensor y;
      if (K > 0) y = a->conditional ? data.labels.narrow(0, i, n).to(device) : torch::full({n}, K, torch::dtype(torch::kLong).device(device));
      EpsModel eps = [&](const torch::Tensor& x, const torch::Tensor& t) {
        return to_eps(pred, net->forward(x, t, y), x, sched.alpha_bar(t, x));
      };
      auto r = variational_bound(sched, eps, x0, variance, ts, noise, !a->no_clip);
      bpd.push_back(r.bpd);
      const double scale = 1.0 / (double(x0[0].numel()) * std::log(2.0));
      prior.push_back(r.prior * scale);
      kl.push_back(r.kl * scale);
      dec.push_back(r.decoder * scale);
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double so_far = torch::cat(bpd).mean().item<double>();
      std::ostringstream line;
      line << "images " << i + n << "/" << N << " | bits/dim so far " << std::fixed << std::setprecision(4) << so_far
           << " | " << std::setprecision(0) << el << " s, eta " << el / double(i + n) * double(N - i - n) << " s";
      if (tty) std::cerr << "\r\033[K" << line.str() << std::flush;
      else std::cerr << line.str() << "\n";
    }
    if (tty) std::cerr << "\n";
    auto all = torch::cat(bpd);
    const double mean = all.mean().item<double>();
    const double se = N > 1 ? all.std().item<double>() / std::sqrt(double(N)) : 0.0;
    nlohmann::json j = {{"checkpoint", a->checkpoint},
                        {"data", spec},
                        {"num", N},
                        {"bpd", mean},
                        {"bpd_stderr", se},
                        {"prior_bpd", torch::cat(prior).mean().item<double>()},
                        {"kl_bpd", torch::cat(kl).mean().item<double>()},
                        {"decoder_bpd", torch::cat(dec).mean().item<double>()},
                        {"kl_terms", ts.size()},
                        {"timesteps", sched.T},
                        {"estimate", estimate},
                        {"variance", to_string(variance)},
                        {"clip", !a->no_clip},
                        {"conditional", a->conditional},
                        {"seed", a->seed},
                        {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
    if (!a->json.empty()) write_file_atomic(a->json, j.dump(2) + "\n");
    std::cout << j.dump() << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
