// trainer.cpp — see trainer.h. Size legend: B global batch, b = B / world_size per-rank batch, C×H×W image.
#include "ddpm/train/trainer.h"

#include "ddpm/diffusion/prediction.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/image_io.h"
#include "ddpm/samplers/generate.h"
#include "ddpm/util/hash.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;
namespace {

// Independent random streams of a step (see mix_seed).
constexpr uint64_t kStreamData = 1, kStreamNoise = 2, kStreamDropout = 3, kStreamInit = 4;


}  // namespace

void check_dataset_matches(const Dataset& d, const ModelConfig& m) {
  if (d.height() != m.image_size || d.width() != m.image_size || d.channels() != m.channels)
    throw std::runtime_error("dataset '" + d.name + "' has images of " + std::to_string(d.channels()) + "x" +
                             std::to_string(d.height()) + "x" + std::to_string(d.width()) + " but the model expects " +
                             std::to_string(m.channels) + "x" + std::to_string(m.image_size) + "x" +
                             std::to_string(m.image_size));
}

Trainer::Trainer(Config cfg, Dataset data, torch::Device device, std::shared_ptr<Communicator> comm)
    : cfg_(std::move(cfg)),
      data_(std::move(data)),
      device_(device),
      comm_(comm ? std::move(comm) : std::make_shared<LocalCommunicator>()),
      multi_process_(comm_->backend() != "local"),
      schedule_(parse_beta_schedule(cfg_.diffusion.schedule), cfg_.diffusion.timesteps),
      prediction_(parse_prediction(cfg_.diffusion.prediction)) {
  validate(cfg_);
  check_dataset_matches(data_, cfg_.model);
  if (cfg_.model.num_classes > 0) {
    if (!data_.labels.defined())
      throw std::runtime_error("--num-classes " + std::to_string(cfg_.model.num_classes) + " needs labels, but dataset '" +
                               data_.name + "' has none");
    const int64_t top = data_.labels.max().item<int64_t>(), low = data_.labels.min().item<int64_t>();
    if (low < 0 || top >= cfg_.model.num_classes)
      throw std::runtime_error("dataset '" + data_.name + "' has labels in [" + std::to_string(low) + ", " +
                               std::to_string(top) + "], which does not fit --num-classes " +
                               std::to_string(cfg_.model.num_classes));
  }
  if (cfg_.train.batch_size % comm_->world_size() != 0)
    throw std::runtime_error("batch size " + std::to_string(cfg_.train.batch_size) +
                             " is not divisible by the world size " + std::to_string(comm_->world_size()));
  torch::manual_seed(mix_seed(cfg_.train.seed, 0, kStreamInit));
  model_ = make_backbone(cfg_.model);
  ema_ = make_backbone(cfg_.model);
  model_->to(device_);
  ema_->to(device_);
  // Mixed precision changes how the forward pass computes, not the weights: params, Adam and the EMA stay fp32.
  const auto mode = compute_mode_for(parse_precision(cfg_.train.precision), device_);
  model_->set_compute(mode);
  ema_->set_compute(mode);
  params_ = model_->parameters();
  comm_->broadcast(params_, 0);  // identical initial weights on every rank
  ema_params_ = ema_->parameters();
  {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params_.size(); ++i) {
      ema_params_[i].copy_(params_[i]);
      ema_params_[i].set_requires_grad(false);
    }
  }
  model_->train();
  ema_->eval();
  opt_ = std::make_unique<Adam>(params_);
}

torch::Tensor Trainer::epoch_permutation(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    auto gen = make_generator(mix_seed(cfg_.train.seed, static_cast<uint64_t>(epoch), kStreamData));
    cached_perm_ = torch::randperm(data_.size(), gen, torch::kLong);
    cached_epoch_ = epoch;
  }
  return cached_perm_;
}

Trainer::Batch Trainer::batch_for_step(int64_t step) const {
  const int64_t B = cfg_.train.batch_size, W = comm_->world_size(), b = B / W, r = comm_->rank();
  const int64_t N = data_.size();
  const auto C = cfg_.model.channels, S = cfg_.model.image_size;

  // Sample indices: position p of the endless stream of epochs, each a fresh permutation.
  auto idx = torch::empty({b}, torch::kLong);
  auto* ip = idx.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t p = step * B + r * b + i;
    ip[i] = epoch_permutation(p / N).data_ptr<int64_t>()[p % N];
  }
  // Timesteps, noise and flips for the whole global batch, then this rank's slice.
  auto gen = make_generator(mix_seed(cfg_.train.seed, static_cast<uint64_t>(step), kStreamNoise));
  auto t_all = torch::randint(0, schedule_.T, {B}, gen, torch::kLong);                         // [B]
  auto noise_all = torch::randn({B, C, S, S}, gen, torch::kFloat32);                           // [B,C,H,W]
  auto flip_all = torch::rand({B}, gen, torch::kFloat32) < 0.5;                                // [B]
  // Label dropout for classifier-free guidance (Ho & Salimans 2022, Algorithm 1): each sample independently
  // gets the null label with probability p_uncond (never the whole batch at once).
  torch::Tensor drop_all;
  if (cfg_.model.num_classes > 0) drop_all = torch::rand({B}, gen, torch::kFloat32) < cfg_.train.label_dropout;  // [B]

  auto x0 = to_model_range(data_.images.index_select(0, idx));                                 // [b,C,H,W]
  if (cfg_.train.flip) {
    auto f = flip_all.slice(0, r * b, (r + 1) * b).view({b, 1, 1, 1});
    x0 = torch::where(f, x0.flip({3}), x0);
  }
  Batch batch;
  batch.x0 = x0.to(device_);
  batch.t = t_all.slice(0, r * b, (r + 1) * b).to(device_);                                   // [b]
  batch.noise = noise_all.slice(0, r * b, (r + 1) * b).to(device_);                           // [b,C,H,W]
  if (cfg_.model.num_classes > 0) {
    auto y = data_.labels.index_select(0, idx);                                                // [b]
    auto drop = drop_all.slice(0, r * b, (r + 1) * b);
    batch.y = torch::where(drop, torch::full_like(y, cfg_.model.num_classes), y).to(device_);  // [b]
  }
  return batch;
}

StepStats Trainer::train_step(bool stop_requested) {
  StepStats s;
  const bool multi = multi_process_;
  if (multi && !buckets_) buckets_ = std::make_unique<GradBuckets>(params_, *comm_, bucket_mb_ * (int64_t{1} << 20));
  torch::manual_seed(mix_seed(cfg_.train.seed, static_cast<uint64_t>(step_), kStreamDropout + 16 * comm_->rank()));
  if (!prefetch_) prefetch_ = std::make_unique<Prefetcher<Batch>>([this](int64_t s) { return batch_for_step(s); });
  auto batch = prefetch_->get(step_);
  if (batch_hook) batch_hook(step_, batch);

  // Algorithm 1: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε; minimise ‖ε − ε_θ(x_t, t)‖² (eq. 14, L_simple), or the same
  // squared error on x_0 or v for the other prediction targets (prediction.h); train.loss_weight = min_snr
  // weights each sample's error by min(SNR_t, γ) in x_0 terms (Hang et al. 2023).
  auto x_t = schedule_.q_sample(batch.x0, batch.t, batch.noise);    // [b,C,H,W]
  auto out = model_->forward(x_t, batch.t, batch.y);                 // [b,C,H,W]
  const auto a_t = schedule_.alpha_bar(batch.t, x_t);                // [b,1,1,1]
  auto target = training_target(prediction_, batch.x0, batch.noise, a_t);
  auto loss = cfg_.train.loss_weight == "min_snr"
                  ? ((out - target).pow(2).flatten(1).mean(1) *
                     min_snr_weight(prediction_, a_t, cfg_.train.min_snr_gamma).flatten())
                        .mean()
                  : torch::mse_loss(out, target);
  // Per-quarter sums for the log: [Σ loss in q0..q3, count in q0..q3] of this rank's samples.
  torch::Tensor qstats;
  {
    torch::NoGradGuard ng;
    auto per = (out.detach() - target).pow(2).flatten(1).mean(1).to(torch::kCPU, torch::kFloat64);  // [b]
    auto q = (batch.t.cpu() * 4).div(schedule_.T, "floor").clamp(0, 3);                                       // [b]
    qstats = torch::zeros({8}, torch::kFloat64);
    qstats.index_add_(0, q, per);
    qstats.index_add_(0, q + 4, torch::ones_like(per));
  }
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
  if (multi) {
    // Every rank's loss is the mean over its b samples, so the mean over ranks of the averaged gradients is the
    // gradient of the mean over the global batch B, as with one process.
    buckets_->reset_wait_seconds();
    buckets_->begin();
    loss.backward();   // bucket all-reduces start from the gradient hooks while backward runs
    buckets_->finish();  // p.grad() = average over ranks
  } else {
    loss.backward();
  }

  std::vector<torch::Tensor> grads;
  for (auto& p : params_) grads.push_back(p.grad());
  if (multi) {
    // The loss, the stop requests and the per-quarter sums in one small all-reduce: [Σ loss_r, Σ stop_r, q...].
    auto ls = torch::cat({loss.detach().to(torch::kCPU, torch::kFloat64).reshape({1}),
                          torch::full({1}, stop_requested ? 1.0 : 0.0, torch::kFloat64), qstats});  // [10]
    if (device_.is_cuda()) ls = ls.to(device_);
    const auto t0 = std::chrono::steady_clock::now();
    comm_->all_reduce_sum_async(ls)->wait();
    s.comm_s = buckets_->wait_seconds() + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ls = ls.cpu();
    s.loss = ls[0].item<double>() / comm_->world_size();
    s.stop = ls[1].item<double>() > 0;
    qstats = ls.slice(0, 2, 10).contiguous();
  } else {
    s.loss = loss.item<double>();
    s.stop = stop_requested;
  }
  for (int k = 0; k < 4; ++k) {
    s.q_loss_sum[k] = qstats.data_ptr<double>()[k];
    s.q_count[k] = qstats.data_ptr<double>()[4 + k];
  }
  s.lr = lr_at(cfg_.train, step_);
  torch::NoGradGuard ng;
  // Global norm of the (averaged) gradient, computed once: it is both the clipping scale and the non-finite
  // test (a NaN/Inf in any gradient makes it non-finite).
  std::vector<torch::Tensor> norms;
  for (auto& g : grads) norms.push_back(g.norm(2));
  s.grad_norm = torch::stack(norms).norm(2).item<double>();
  // Non-finite guard: skip the update (Adam, EMA) on a NaN/Inf loss or gradient. The decision must be the same
  // on every rank, so it is taken only on all-reduced values (loss and the norm of the averaged gradient): a NaN
  // on any rank reaches all of them through the averaging, and all skip together.
  s.skipped = !std::isfinite(s.loss) || !std::isfinite(s.grad_norm);
  if (!s.skipped) {
    double scale = 1.0;
    if (cfg_.train.grad_clip > 0 && s.grad_norm > cfg_.train.grad_clip) scale = cfg_.train.grad_clip / (s.grad_norm + 1e-6);
    // Clipping, Adam and the EMA (ema ← d·ema + (1−d)·θ) in one pass per parameter (optim.h).
    opt_->step(s.lr, scale, &ema_params_, ema_decay_at(cfg_.train.ema_decay, step_));
  }
  ++step_;
  return s;
}

SafeTensors Trainer::checkpoint_state() {
  SafeTensors st;
  add_module_state(st, *model_, "model.");
  add_module_state(st, *ema_, "ema.");
  auto named = model_->named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    st.tensors.emplace_back("optim.exp_avg." + named[i].key(), opt_->exp_avg()[i]);
    st.tensors.emplace_back("optim.exp_avg_sq." + named[i].key(), opt_->exp_avg_sq()[i]);
  }
  st.metadata = checkpoint_metadata(cfg_, step_);
  st.metadata["optim_step"] = std::to_string(opt_->steps());
  return st;
}

void Trainer::save(const std::string& path) {
  if (comm_->rank() != 0) return;
  auto st = checkpoint_state();
  check_finite(st, path);
  safetensors_save(path, st);
}

uint64_t Trainer::check_replicas() {
  // FNV-1a over the bytes of every weight, EMA weight and Adam moment: equal checksums mean equal bits.
  uint64_t h = kFnv1a64Offset;
  auto mix = [&](const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    h = fnv1a64(c.data_ptr(), c.nbytes(), h);
  };
  for (const auto& p : params_) mix(p);
  for (const auto& p : ema_params_) mix(p);
  for (const auto& m : opt_->exp_avg()) mix(m);
  for (const auto& v : opt_->exp_avg_sq()) mix(v);
  if (comm_->world_size() == 1) return h;
  auto mine = torch::tensor({static_cast<int64_t>(h)}, torch::kLong);  // [1]
  if (device_.is_cuda()) mine = mine.to(device_);
  auto all = comm_->all_gather(mine).cpu();  // [W, 1]
  for (int r = 0; r < comm_->world_size(); ++r)
    if (all[r][0].item<int64_t>() != static_cast<int64_t>(h))
      throw std::runtime_error("step " + std::to_string(step_) + ": the weights of rank " + std::to_string(r) +
                               " differ from rank " + std::to_string(comm_->rank()) +
                               "'s (replicas diverged; nothing was saved)");
  return h;
}

std::vector<std::string> Trainer::init_from(const Checkpoint& ck) {
  const std::string prefix = ck.has("ema.") ? "ema." : "model.";
  std::vector<std::string> fresh;
  torch::NoGradGuard ng;
  auto named = model_->named_parameters();
  auto ema_named = ema_->named_parameters();
  for (const auto& p : named) {
    const auto* src = ck.st.find(prefix + p.key());
    if (!src) {
      fresh.push_back(p.key());
      continue;
    }
    if (src->sizes() != p.value().sizes())
      throw std::runtime_error(ck.path + ": tensor '" + prefix + p.key() + "' has shape " + c10::str(src->sizes()) +
                               " but this model's '" + p.key() + "' is " + c10::str(p.value().sizes()));
    p.value().copy_(*src);
    ema_named[p.key()].copy_(*src);
  }
  for (const auto& [name, t] : ck.st.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    if (!named.contains(name.substr(prefix.size())))
      throw std::runtime_error(ck.path + ": tensor '" + name + "' has no place in this model (a different architecture?)");
  }
  for (const auto& b : model_->named_buffers()) {  // none in the UNet or the DiT today; kept in step if any appear
    if (const auto* src = ck.st.find(prefix + b.key())) b.value().copy_(*src);
  }
  return fresh;
}

void Trainer::load(const std::string& path) { load(load_checkpoint(path)); }

void Trainer::load(const Checkpoint& ck) {
  const std::string& path = ck.path;
  if (to_json(ck.config.model) != to_json(cfg_.model) || ck.config.diffusion.schedule != cfg_.diffusion.schedule ||
      ck.config.diffusion.timesteps != cfg_.diffusion.timesteps ||
      ck.config.diffusion.prediction != cfg_.diffusion.prediction)
    throw std::runtime_error(path + ": checkpoint was trained with a different model, schedule or prediction target (" +
                             to_json(ck.config.model).dump() + ", " + ck.config.diffusion.schedule + " " +
                             std::to_string(ck.config.diffusion.timesteps) + ", " + ck.config.diffusion.prediction + ")");
  load_module_state(*model_, ck.st, "model.", path);
  load_module_state(*ema_, ck.st, ck.has("ema.") ? "ema." : "model.", path);
  torch::NoGradGuard ng;
  auto named = model_->named_parameters();
  for (size_t i = 0; i < named.size(); ++i) {
    const auto* m = ck.st.find("optim.exp_avg." + named[i].key());
    const auto* v = ck.st.find("optim.exp_avg_sq." + named[i].key());
    if (!m || !v) throw std::runtime_error(path + ": checkpoint lacks optimizer state (a weights-only file cannot be resumed)");
    opt_->exp_avg()[i].copy_(*m);
    opt_->exp_avg_sq()[i].copy_(*v);
  }
  auto it = ck.st.metadata.find("optim_step");
  opt_->set_steps(it == ck.st.metadata.end() ? ck.step : std::stoll(it->second));
  step_ = ck.step;
}

torch::Tensor Trainer::write_sample_grid(const std::string& path) {
  // The same seed at every grid: the same images-to-be, to watch them form. Class-conditional models get one row
  // per class.
  GenerateOptions g;
  g.sampler.name = "ddpm";
  g.sampler.steps = std::min(cfg_.train.sample_steps, schedule_.T);
  g.sampler.variance = parse_variance_type(cfg_.diffusion.variance);
  g.seed = cfg_.train.seed;
  g.num = cfg_.train.sample_num;
  auto nrow = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(g.num))));
  if (cfg_.model.num_classes > 0) {
    nrow = std::max<int64_t>(1, g.num / cfg_.model.num_classes);
    g.labels = class_rows(cfg_.model.num_classes, nrow);
    g.num = static_cast<int64_t>(g.labels.size());
  }
  auto x0 = generate(ema_, cfg_, g);
  auto grid = make_grid(to_uint8(x0), nrow);
  save_png(path, grid);
  return grid;
}

torch::Tensor Trainer::generate_eval_samples() {
  const auto& tc = cfg_.train;
  GenerateOptions g;
  g.sampler.name = tc.eval_sampler;
  g.sampler.steps = tc.eval_steps;
  g.sampler.variance = parse_variance_type(cfg_.diffusion.variance);
  g.seed = mix_seed(tc.seed, 0, 0xe7a1);
  g.num = tc.eval_samples;
  g.batch_size = 256;
  if (cfg_.model.num_classes > 0)
    for (int64_t i = 0; i < g.num; ++i) g.labels.push_back(i % cfg_.model.num_classes);
  return to_uint8(generate(ema_, cfg_, g));  // [M,C,H,W]
}

}  // namespace ddpm
