// config.h — everything that defines a model and a run, as plain data with defaults (nanoGPT style).
// Presets fill the model; a TOML file can set any field; command-line flags override both. Unknown keys are
// errors. The effective config is written to the run directory (config.toml) and into every checkpoint (JSON).
// Not here: parsing of the command line (app/) or validation against a dataset (train.cpp).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ddpm {

// Which network (arch) and its shape. image_size, channels and num_classes apply to every arch; the UNet's
// fields (ch .. dropout) only to arch = "unet", the DiT's (patch_size .. mlp_ratio) only to arch = "dit": a
// TOML/JSON config that sets the other arch's fields is an error, and only the arch's own are written.
struct ModelConfig {
  int64_t image_size = 28;   // H = W
  int64_t channels = 1;      // C of the images
  int64_t ch = 64;           // base width
  std::vector<int64_t> ch_mult{1, 2, 2};
  int64_t num_res_blocks = 2;
  std::vector<int64_t> attn_resolutions{14};
  double dropout = 0.1;
  int64_t num_classes = 0;   // > 0: class-conditional (label embedding + null label for guidance)
  std::string arch = "unet";  // unet (unet.h) | dit (dit.h)
  // DiT (Peebles & Xie 2023): (image_size / patch_size)² tokens of width hidden_size, depth blocks.
  int64_t patch_size = 2;    // p: each token is a p×p patch
  int64_t depth = 6;         // transformer blocks
  int64_t hidden_size = 96;  // D, the token width
  int64_t num_heads = 4;     // attention heads (D / num_heads wide each)
  double mlp_ratio = 4.0;    // MLP hidden width / D
};

struct DiffusionConfig {
  std::string schedule = "linear";    // linear | cosine
  int64_t timesteps = 1000;           // T
  std::string variance = "fixed_large";  // reverse-process variance for sampling: fixed_large (β_t) | fixed_small (β̃_t)
  std::string prediction = "eps";     // what the network predicts: eps | x0 | v (see prediction.h)
};

struct TrainConfig {
  std::string data = "fashion-mnist";  // dataset spec, see data.h
  std::string out = "runs/fmnist";     // run directory
  int64_t steps = 10000;               // total optimisation steps of the run (a resumed run continues to this)
  int64_t batch_size = 64;             // global batch (divided across ranks)
  double lr = 2e-4;                    // Adam learning rate after warm-up
  int64_t warmup = 1000;               // linear learning-rate warm-up steps
  std::string lr_schedule = "constant";  // after warm-up: constant | cosine | linear (both decay to 0 at steps)
  std::string loss_weight = "uniform";   // uniform (L_simple) | min_snr (Hang et al. 2023, weight min(SNR, γ))
  double min_snr_gamma = 5.0;            // γ of min_snr
  double grad_clip = 1.0;              // global gradient-norm clip (0 = off)
  double ema_decay = 0.9999;           // EMA decay, with warm-up min(decay, (1+n)/(10+n))
  bool flip = false;                   // random horizontal flips
  double label_dropout = 0.1;          // class-conditional: probability per sample of the null label (CFG)
  uint64_t seed = 0;
  int64_t save_every = 1000;           // checkpoint interval in steps (0 = only at the end)
  int64_t keep_checkpoints = 0;        // also keep the last K step-numbered checkpoints (run_files.h)
  int64_t max_nonfinite = 20;          // stop after this many non-finite (skipped) steps in a row (0 = never)
  int64_t sample_every = 1000;         // sample-grid interval in steps (0 = only at the end)
  int64_t sample_num = 64;             // images in each sample grid
  int64_t sample_steps = 100;          // DDPM steps (respaced) for the grids written during training
  int64_t log_every = 50;              // metrics.jsonl / plain log interval
  std::string device = "auto";         // auto | cpu | cuda
  int64_t threads = 0;                 // torch intra-op threads, 0 = cores available
  std::string precision = "fp32";      // fp32 | bf16 mixed precision (nn/precision.h); fp32 weights either way
  bool tensorboard = true;             // TensorBoard event file in out/tensorboard/ (tensorboard.h)
  // Image folders (images:DIR, image_folder.h): decoded once into a memory-mapped uint8 cache.
  std::string cache;                   // cache file ("" = out/data-cache.bin)
  bool allow_upscale = false;          // accept images whose shorter side is below model.image_size
  bool skip_bad_images = false;        // report and skip unreadable image files instead of stopping
  // Evaluation during training (evaluate.h): FID/KID of eval_samples images every eval_every steps, logged to
  // metrics.jsonl and TensorBoard; the best EMA weights by FID are kept in out/best.safetensors.
  int64_t eval_every = 0;              // 0 = off
  int64_t eval_samples = 1000;         // images generated per evaluation
  std::string eval_sampler = "dpm++2m";  // a fast sampler (samplers/registry.h)
  int64_t eval_steps = 20;             // its steps
  std::string eval_ref;                // reference spec ("" = the test split of train.data)
  std::string eval_features;           // feature network NAME|FILE ("" = the default for the image shape)
};

struct Config {
  std::string preset = "fmnist";
  ModelConfig model;
  DiffusionConfig diffusion;
  TrainConfig train;
};

// Names of the built-in model presets: cifar10, fmnist, fmnist-small, tiny (UNets), dit-fmnist, dit-cifar (DiTs).
std::vector<std::string> preset_names();
// The model of a preset; throws "unknown preset" listing the valid names.
ModelConfig preset_model(const std::string& name);

// Apply a TOML document (sections [model], [diffusion], [train] and a top-level `preset`) over `cfg`.
// A `preset` key replaces the model first, then explicit [model] keys override it.
// Throws with the path and the key for unknown keys, wrong types or parse errors.
void apply_toml_file(Config& cfg, const std::string& path);
void apply_toml_string(Config& cfg, const std::string& text, const std::string& source_name);
std::string to_toml(const Config& cfg);

nlohmann::json to_json(const Config& cfg);
Config config_from_json(const nlohmann::json& j);  // throws on missing or unknown keys
nlohmann::json to_json(const ModelConfig& m);

// Resuming a run with a changed config: the fields (as "section.key: old -> new") that differ between the run's
// config and `now`, leaving out those a resumed run may change (steps, out, intervals, device, threads, ...:
// resume_mutable_fields()). Empty = the resume is allowed.
std::vector<std::string> resume_differences(const Config& run, const Config& now);
const std::vector<std::string>& resume_mutable_fields();

// Throws std::runtime_error naming the field for impossible values (non-positive sizes, GroupNorm widths, patch
// sizes that do not divide the image, ...).
void validate(const Config& cfg);

}  // namespace ddpm
