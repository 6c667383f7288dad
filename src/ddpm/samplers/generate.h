// generate.h — images from a network: the one place that wires a backbone (UNet or DiT) into a sampler (prediction-target adapter,
// class labels, classifier-free guidance, per-image noise, batching). Used by `ddpm sample`, the trainer's sample
// grids and the sampler benchmark.
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/nn/backbone.h"
#include "ddpm/samplers/registry.h"
#include "ddpm/util/config.h"

#include <functional>
#include <vector>

namespace ddpm {

// Images per forward pass unless told otherwise: constant memory whatever --num, and full speed (all 512 at
// once took 83 s and 1.39 GB for dpm++2m-20 on 2 cores, 64 at a time 22.7 s and 0.40 GB). The images do not
// depend on the batch (each draws its own noise stream).
constexpr int64_t kDefaultSampleBatch = 64;

struct GenerateOptions {
  SamplerOptions sampler;
  int64_t num = 64;
  uint64_t seed = 0;                 // image i draws x_T and its noise from its own stream (seed, i)
  int64_t batch_size = 0;            // images per forward pass; 0 = kDefaultSampleBatch
  std::vector<int64_t> labels;       // class of each image (class-conditional models); empty = the null class
  double guidance = 0.0;             // classifier-free guidance weight w (guidance.h)
  // Progress: (first image of the batch, images in it, step done, steps).
  std::function<void(int64_t, int64_t, int64_t, int64_t)> on_progress;
  // Applied to each batch's ε-model before sampling (the server's previews and cancellation); unset: none.
  std::function<EpsModel(EpsModel)> wrap_model;
};

// Samples opts.num images with `net` (put in eval mode, no gradients) on its device: [N,C,H,W] float32 on the
// CPU, in the model range [-1, 1]. `cfg` supplies the schedule, the prediction target and the classes.
// Throws on labels out of range, labels or guidance for an unconditional model, or bad sampler options.
torch::Tensor generate(Backbone net, const Config& cfg, const GenerateOptions& opts);

// The network as the ε-model of a batch: the prediction-target adapter, and for a class-conditional model the
// labels [n] of the batch's images (undefined: the null class) with classifier-free guidance w. Puts `net` in
// eval mode; call under NoGradGuard. The model refers to `net` and `schedule`: both must outlive it. The
// restoration verbs wire the network into their methods through this.
EpsModel network_eps(Backbone net, const Config& cfg, const Schedule& schedule, const torch::Tensor& labels,
                     double guidance);

// The labels of a grid with one row per class: per_class images of class 0, then of class 1, ...
std::vector<int64_t> class_rows(int64_t num_classes, int64_t per_class);

}  // namespace ddpm
