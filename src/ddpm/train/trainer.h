// trainer.h — the DDPM training loop: L_simple (Ho et al. 2020, eq. 14 / Algorithm 1), Adam with linear warm-up,
// global gradient-norm clipping, an EMA of the weights, periodic sample grids and checkpoints.
//
// Distributed by design: a Communicator (communicator.h) supplies rank, world size and collectives; world size
// 1 is the LocalCommunicator, many processes a c10d process group (distributed.h) with gradients averaged in
// buckets overlapped with backward (grad_buckets.h). The global batch of step s is a pure function of (seed, s): every rank computes the same
// global sample indices, timesteps and noise and takes its own slice, so a run is reproducible for a given
// seed whatever the world size, and resume needs no RNG state beyond the step number.
// The network is whichever Backbone model.arch names (backbone.h: the UNet or the DiT).
// Not here: the network (unet.h, dit.h), the sampler (samplers/), file formats (checkpoint.h).
#pragma once

#include "ddpm/data/data.h"
#include "ddpm/diffusion/prediction.h"
#include "ddpm/diffusion/schedule.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/nn/backbone.h"
#include "ddpm/train/communicator.h"
#include "ddpm/train/grad_buckets.h"
#include "ddpm/train/optim.h"
#include "ddpm/train/prefetch.h"
#include "ddpm/util/config.h"

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace ddpm {

struct Checkpoint;  // checkpoint.h

struct StepStats {
  double loss = 0;       // mean L_simple over the global batch (averaged across ranks)
  double grad_norm = 0;  // global norm before clipping
  double lr = 0;
  bool skipped = false;  // non-finite loss or gradient: the update (Adam, EMA) was skipped
  bool stop = false;     // some rank asked to stop after this step (agreed by all ranks)
  double comm_s = 0;     // time this rank waited on communication in this step (gradients + loss)
  // L_simple by quarter of the t range (improved-diffusion's loss_q0..q3): sum of per-sample losses and count
  // over the global batch, q = ⌊4t / T⌋.
  std::array<double, 4> q_loss_sum{}, q_count{};
};

struct TrainHooks {
  const std::atomic<bool>* stop = nullptr;  // checked between steps: save and return when set
  std::ostream* log = nullptr;              // progress and messages (rank 0 only); nullptr = silent
  bool tty = false;                         // live progress line instead of plain log lines
};

class Trainer {
 public:
  Trainer(Config cfg, Dataset data, torch::Device device, std::shared_ptr<Communicator> comm = nullptr);

  // Loads model, EMA, optimizer and step from a checkpoint written by this trainer.
  void load(const std::string& checkpoint_path);
  void load(const Checkpoint& ck);  // the same, from an already parsed checkpoint
  // Writes the checkpoint crash-safely; refuses (throws, writing nothing) if any tensor is NaN/Inf.
  void save(const std::string& checkpoint_path);
  // Starts from the weights of another checkpoint (fine-tuning): its EMA (else training) weights go into both
  // the model and the EMA, matched by name; the optimizer and the step start fresh. Parameters the file lacks
  // keep their initialisation and are returned (e.g. label_emb.weight when adding classes to an unconditional
  // model). Throws on a shape mismatch or if the file has parameters this model does not.
  std::vector<std::string> init_from(const Checkpoint& ck);

  // One optimisation step at global step `step_` (then increments it). `stop_requested`: this rank wants to stop
  // after this step; the returned stop is true if any rank does (so all ranks stop at the same step).
  StepStats train_step(bool stop_requested = false);
  // Gradient bucket size for multi-process runs (grad_buckets.h); 0 = one bucket. Before the first step.
  void set_grad_bucket_mb(int64_t mb) { bucket_mb_ = mb; }
  // Multi-process runs: throws unless every rank holds bit-identical weights, EMA and optimizer state
  // (a 64-bit checksum per rank, all-gathered). Returns the checksum. Collective: call on every rank.
  uint64_t check_replicas();
  const Communicator& communicator() const { return *comm_; }
  // Runs to cfg.train.steps with logging, grids and checkpoints in cfg.train.out. Returns true if it reached
  // the end, false if stopped early by hooks.stop (a checkpoint is saved either way). Throws after
  // cfg.train.max_nonfinite skipped (non-finite) steps in a row, leaving the last checkpoint as it was.
  bool run(const TrainHooks& hooks);

  // The global batch of step s for this rank: images in [-1, 1] [b,C,H,W], timesteps [b], noise [b,C,H,W] and,
  // for a class-conditional model, labels [b] int64 after label dropout (the null label is num_classes).
  struct Batch {
    torch::Tensor x0, t, noise, y;
  };
  Batch batch_for_step(int64_t step) const;

  int64_t step() const { return step_; }
  Backbone& model() { return model_; }
  Backbone& ema() { return ema_; }
  const Schedule& schedule() const { return schedule_; }
  const Config& config() const { return cfg_; }
  // Writes a sample grid from the EMA weights to `path` and returns it. -> [C,H',W'] uint8
  torch::Tensor write_sample_grid(const std::string& path);

  // Evaluation during training (train.eval_every): the metrics of generated images, e.g. {"fid": .., "kid": ..}
  // (evaluate.h; the CLI sets it up with the feature network and the reference statistics). Called on rank 0.
  std::function<nlohmann::json(const torch::Tensor& samples_u8)> evaluator;
  // The images an evaluation scores: train.eval_samples from the EMA weights with train.eval_sampler and
  // train.eval_steps, the same seed every time (class-conditional models: classes in turn, no guidance).
  torch::Tensor generate_eval_samples();  // [M,C,H,W] uint8

  // Testing aid (fault injection): called on every batch before the forward pass, e.g. to poison it with NaN.
  std::function<void(int64_t step, Batch& batch)> batch_hook;

 private:
  torch::Tensor epoch_permutation(int64_t epoch) const;
  SafeTensors checkpoint_state();  // everything save() writes, checked finite

  Config cfg_;
  Dataset data_;
  torch::Device device_;
  std::shared_ptr<Communicator> comm_;
  bool multi_process_;  // a real process group (c10d): gradients go through buckets_, replicas are compared
  Schedule schedule_;
  Prediction prediction_;
  Backbone model_{nullptr}, ema_{nullptr};
  std::vector<torch::Tensor> params_, ema_params_;
  std::unique_ptr<Adam> opt_;
  std::unique_ptr<GradBuckets> buckets_;  // multi-process runs only
  int64_t bucket_mb_ = 25;
  int64_t step_ = 0;
  mutable int64_t cached_epoch_ = -1;
  mutable torch::Tensor cached_perm_;
  // The next step's batch is made on a background thread (prefetch.h) while this one trains. Last member: its
  // thread is joined before anything batch_for_step reads is destroyed.
  std::unique_ptr<Prefetcher<Batch>> prefetch_;
};

// Checks that a dataset fits a model: image size and channels.
void check_dataset_matches(const Dataset& d, const ModelConfig& m);

}  // namespace ddpm
