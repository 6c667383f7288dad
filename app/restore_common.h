// restore_common.h — what the five restoration verbs (`ddpm inpaint|upscale|denoise|edit|interpolate`,
// cmd_restore.cpp) share: the common options, loading the checkpoint and the network as `ddpm sample` does, the
// inputs (an image file or dataset images, checked against the model), the batching of (input, result) pairs over
// per-result noise streams, PSNR fields, and the outputs (grid | npz, --out-dir, --json, the JSON line, the
// summary line). Not here: the methods (src/ddpm/restoration/), masks and baselines (restoration/masks.h,
// restoration/baselines.h), what each verb does with them (cmd_restore.cpp).
#pragma once

#include "commands.h"

#include "ddpm/diffusion/schedule.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/nn/backbone.h"
#include "ddpm/restoration/verbs.h"
#include "ddpm/samplers/sampler.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ddpm::app::restore {

// Options every verb has.
struct CommonArgs {
  std::string checkpoint, out, out_dir, format = "grid", json, device = "auto", precision = "fp32", klass, baseline_out;
  int64_t num = 1, batch_size = 0, threads = 0, scale = 1;
  uint64_t seed = 0;
  double guidance = 0;
  bool force_precision = false;
  CLI::Option* o_num = nullptr;
};
// --checkpoint (first in the help, then the verb's own options, then the common ones).
void add_checkpoint_option(CLI::App* c, CommonArgs& a);
// --num --seed --class --guidance --out --out-dir --format --json --scale --batch-size --threads --device
// --precision --force-precision. `stem` names the default outputs (STEM.png, STEM.npz); `arr1` says what the npz's
// arr_1 holds.
void add_common_options(CLI::App* c, CommonArgs& a, const std::string& stem, const std::string& arr1);

// --baseline-out FILE.npz of the verbs with a classical baseline (inpaint, upscale, denoise): with --data, the
// baseline's images as arr_0 uint8 [N,H,W,C], so `ddpm eval` can score them next to the results.
void add_baseline_option(CLI::App* c, CommonArgs& a, const std::string& baseline);

// --image FILE | --data SPEC [--index IDX].
struct SourceArgs {
  std::string image, data, index = "0";
  CLI::Option *o_image = nullptr, *o_data = nullptr, *o_index = nullptr;
};
void add_source_options(CLI::App* c, SourceArgs& s, const std::string& image_help);

// IDX of --index: an index, a comma list, ranges A:B (B excluded), mixed ("0,5,10:20"), each in [0, size).
// Throws naming --index and the dataset.
std::vector<int64_t> parse_indices(const std::string& spec, int64_t size, const std::string& dataset);

// The inputs of a verb: uint8 [N,C,H,W] from one image file, or dataset images (the ground truth).
struct Source {
  torch::Tensor images;          // [N,C,H,W] uint8
  bool ground_truth = false;     // from --data: the images are the truth, the verb degrades them
  std::vector<int64_t> indices;  // dataset indices (--data)
  std::string description;       // "--image x.png" | "fashion-mnist[0:4]"
};

// One image file [C,H,W] uint8 for a model of `channels`: structure checked complete (a truncated PNG/JPEG is an
// error), alpha dropped, then channels and size must match (height × width). `flag` names it in errors; `hint`
// adds to the size error (e.g. "the low-resolution input of --factor 4").
torch::Tensor load_input_image(const std::string& path, const std::string& flag, int64_t channels, int64_t height,
                               int64_t width, const std::string& hint = "");

// The checkpoint, its schedule and (once load_network ran) the network on its device; labels and guidance.
struct Session {
  std::string verb;
  CommonArgs* args = nullptr;
  Checkpoint ck;
  int64_t channels = 0, size = 0, T = 0, num_classes = 0;
  int64_t klass = -1;  // --class (−1: none — the null class of a conditional model)
  std::unique_ptr<Schedule> schedule;
  torch::Device device = torch::kCPU;
  int threads = 0;
  std::optional<Backbone> net;
  std::chrono::steady_clock::time_point t0;

  int64_t batch() const;
  // The ε-model for n images of a batch (labels from --class).
  EpsModel eps(int64_t n);
  // Calls the model 1 or 2 (guidance) times per evaluation: forward images per image per NFE.
  int64_t forward_per_nfe() const { return args->guidance != 0 ? 2 : 1; }
};

// Resolves the default outputs, checks the output paths, loads the checkpoint, checks --class/--guidance, and
// builds the schedule. Nothing is written.
std::unique_ptr<Session> open_session(const std::string& verb, CommonArgs& a, const std::string& stem);
// --variance fixed_small|fixed_large of the methods that take DDPM reverse steps.
CLI::Option* add_variance_option(CLI::App* c, std::string& variance);
// The variance of --variance, or fixed_small when not given: the restoration chains are respaced (≤ 100 steps by
// default), where fixed_large leaves visible noise (measured: docs/restoration.md).
VarianceType resolve_variance(const Session& s, const std::string& variance);
// Validates --steps against the schedule: 0 (the method's default) or in [1, T].
void check_steps(const Session& s, int64_t steps, const std::string& flag = "--steps");
// The images of --image (at the model's size) or --data/--index; checks them against the model.
Source load_source(const Session& s, const SourceArgs& src, bool image_is_low_res = false, int64_t factor = 1);
// Device, threads, precision, --out-dir (created), then the network; starts the clock. Call after every check.
void load_network(Session& s);

// The library's runner of the verbs' compute cores (restoration/verbs.h) on the session's network, with a progress
// line on a terminal. Call after load_network.
VerbRunner runner(Session& s);

// What a verb writes.
struct Outputs {
  torch::Tensor grid_cells;           // [rows·cols, C,H,W] uint8, row by row
  int64_t cols = 1;
  std::vector<torch::Tensor> npz;     // arr_0, arr_1, ... uint8 [N,C,H,W] each
  torch::Tensor files;                // [M,C,H,W] uint8: one PNG each in --out-dir (000000.png, ...)
  torch::Tensor baseline;             // [N,C,H,W] uint8: --baseline-out (undefined: none)
};
// The grid of per-input rows: degraded [N], results [N·K] (K per input), truth [N] (undefined: none).
Outputs rows_of(const torch::Tensor& degraded, const torch::Tensor& results, int64_t K, const torch::Tensor& truth);
// Writes the grid or npz (--out), the --out-dir PNGs and --json; prints the JSON line to stdout and `summary` to
// stderr. Adds the common fields (num, seed, seconds, seconds_per_image, outputs, class, guidance) to j.
void finish(Session& s, const Outputs& o, nlohmann::json& j, int64_t results, const std::string& summary);

// "12.34" (fixed, 2 decimals).
std::string fixed2(double v);

}  // namespace ddpm::app::restore
