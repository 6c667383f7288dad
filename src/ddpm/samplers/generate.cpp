// generate.cpp — see generate.h.
#include "ddpm/samplers/generate.h"

#include "ddpm/diffusion/prediction.h"
#include "ddpm/samplers/guidance.h"

#include <stdexcept>
#include <string>

namespace ddpm {

std::vector<int64_t> class_rows(int64_t num_classes, int64_t per_class) {
  std::vector<int64_t> y;
  for (int64_t k = 0; k < num_classes; ++k)
    for (int64_t i = 0; i < per_class; ++i) y.push_back(k);
  return y;
}

EpsModel network_eps(Backbone net, const Config& cfg, const Schedule& schedule, const torch::Tensor& labels,
                     double guidance) {
  const int64_t K = cfg.model.num_classes;
  const auto pred = parse_prediction(cfg.diffusion.prediction);
  net->eval();
  // The network, whatever it predicts, as a class-conditional ε-model (prediction.h's adapter).
  CondEpsModel cond_eps = [net, pred, &schedule](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) mutable {
    return to_eps(pred, net->forward(x, t, y), x, schedule.alpha_bar(t, x));
  };
  if (K == 0) {
    if (labels.defined()) throw std::runtime_error("this model is unconditional (num_classes = 0): it takes no class labels");
    if (guidance != 0.0) throw std::runtime_error("guidance needs a class-conditional model (this one has num_classes = 0)");
    return [cond_eps](const torch::Tensor& x, const torch::Tensor& t) { return cond_eps(x, t, torch::Tensor()); };
  }
  // Unlabelled images of a class-conditional model use the null class K.
  return [cond_eps, labels, K, guidance](const torch::Tensor& x, const torch::Tensor& t) {
    auto y = labels.defined() ? labels : torch::full({x.size(0)}, K, torch::kLong);  // [n]
    return classifier_free_guidance(cond_eps, y, K, guidance)(x, t);
  };
}

torch::Tensor generate(Backbone net, const Config& cfg, const GenerateOptions& opts) {
  const auto& m = cfg.model;
  const int64_t K = m.num_classes;
  if (opts.num < 1) throw std::runtime_error("number of images must be positive");
  if (!opts.labels.empty()) {
    if (K == 0) throw std::runtime_error("this model is unconditional (num_classes = 0): it takes no class labels");
    if (static_cast<int64_t>(opts.labels.size()) != opts.num)
      throw std::runtime_error("got " + std::to_string(opts.labels.size()) + " labels for " + std::to_string(opts.num) + " images");
    for (auto y : opts.labels)
      if (y < 0 || y >= K)
        throw std::runtime_error("class " + std::to_string(y) + " is outside [0, " + std::to_string(K - 1) + "] for this model");
  }
  if (opts.guidance != 0.0 && K == 0)
    throw std::runtime_error("guidance needs a class-conditional model (this one has num_classes = 0)");
  if (opts.guidance < 0) throw std::runtime_error("guidance weight must be >= 0, got " + std::to_string(opts.guidance));

  const Schedule schedule(parse_beta_schedule(cfg.diffusion.schedule), cfg.diffusion.timesteps);
  check_sampler_options(opts.sampler, schedule.T);
  const auto device = net->parameters().front().device();
  net->eval();
  torch::NoGradGuard ng;

  PerImageNoise noise(opts.seed, opts.num);
  auto x_T = noise.draw(0, {opts.num, m.channels, m.image_size, m.image_size});  // [N,C,H,W]
  const int64_t bs = opts.batch_size > 0 ? opts.batch_size : kDefaultSampleBatch;
  std::vector<torch::Tensor> outs;
  for (int64_t start = 0; start < opts.num; start += bs) {
    const int64_t n = std::min(bs, opts.num - start);
    torch::Tensor y;
    if (!opts.labels.empty())
      y = torch::tensor(std::vector<int64_t>(opts.labels.begin() + start, opts.labels.begin() + start + n),
                        torch::kLong);  // [n]
    EpsModel eps = network_eps(net, cfg, schedule, y, opts.guidance);
    if (opts.wrap_model) eps = opts.wrap_model(std::move(eps));
    SamplerOptions so = opts.sampler;
    if (opts.on_progress) so.on_step = [&, start, n](int64_t i, int64_t total) { opts.on_progress(start, n, i, total); };
    auto x0 = run_sampler(schedule, eps, x_T.slice(0, start, start + n).to(device), noise.slice(start), so);
    outs.push_back(x0.to(torch::kCPU, torch::kFloat32));
  }
  return torch::cat(outs, 0);  // [N,C,H,W]
}

}  // namespace ddpm
