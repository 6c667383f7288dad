// restore_common.cpp — see restore_common.h.
#include "restore_common.h"

#include "ddpm/data/data.h"
#include "ddpm/data/image_folder.h"
#include "ddpm/data/image_set.h"
#include "ddpm/io/image_io.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/nn/precision.h"
#include "ddpm/restoration/baselines.h"
#include "ddpm/restoration/inputs.h"
#include "ddpm/samplers/generate.h"
#include "ddpm/util/runtime.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace ddpm::app::restore {
namespace fs = std::filesystem;

namespace {
std::string dims(int64_t c, int64_t h, int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// A non-negative integer, or nullopt.
std::optional<int64_t> parse_index(const std::string& s) {
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  return std::stoll(s);
}
}  // namespace

std::string fixed2(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2) << v;
  return o.str();
}

void add_checkpoint_option(CLI::App* c, CommonArgs& a) {
  c->add_option("--checkpoint", a.checkpoint, "Checkpoint or weights file (.safetensors)")->required();
}

void add_common_options(CLI::App* c, CommonArgs& a, const std::string& stem, const std::string& arr1) {
  a.o_num = c->add_option("--num", a.num, "Results per input (each from its own noise; with --data and K > 1 the "
                                          "JSON also reports the PSNR of their mean, the posterior-mean estimate)")
                ->check(CLI::PositiveNumber);
  c->add_option("--seed", a.seed, "Seed: result k of input i draws all its noise from stream (seed, i·K + k), so the "
                                  "results do not depend on --batch-size");
  c->add_option("--class", a.klass, "Class-conditional models: the class index of every result (default: the null "
                                    "class)");
  c->add_option("--guidance", a.guidance, "Classifier-free guidance w (class-conditional models); 0 = none")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--out", a.out, "The grid PNG (default " + stem + ".png unless --out-dir is given; one row per input: "
                                "the input, the results, the ground truth when known), or with --format npz the "
                                ".npz (default " + stem + ".npz)");
  c->add_option("--format", a.format, "grid | npz: --out is an .npz with arr_0 the results uint8 [N·K,H,W,C] input by "
                                      "input, arr_1 " + arr1)
      ->check(CLI::IsMember({"grid", "npz"}));
  c->add_option("--out-dir", a.out_dir, "Directory for one PNG per result (000000.png, ... input by input)");
  c->add_option("--json", a.json, "Also write the JSON line printed on stdout to this file");
  c->add_option("--scale", a.scale, "Enlarge the grid by this integer factor (nearest neighbour)")
      ->check(CLI::PositiveNumber);
  c->add_option("--batch-size", a.batch_size, "Results per forward pass (0: 64; the results do not depend on it)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--device", a.device, "auto | cpu | cuda");
  c->add_option("--threads", a.threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);
  add_precision_options(c, a.precision, a.force_precision);
}

void add_baseline_option(CLI::App* c, CommonArgs& a, const std::string& baseline) {
  c->add_option("--baseline-out", a.baseline_out, "With --data: also write the baseline's images (" + baseline +
                                                   ") as an .npz, arr_0 uint8 [N,H,W,C], for `ddpm eval`");
}

void add_source_options(CLI::App* c, SourceArgs& s, const std::string& image_help) {
  s.o_image = c->add_option("--image", s.image, image_help);
  s.o_data = c->add_option("--data", s.data, "Dataset spec (as train --data) to take ground-truth images from: the "
                                             "verb degrades them itself and reports PSNR against a classical baseline");
  s.o_index = c->add_option("--index", s.index, "Images of --data: an index, a comma list, ranges A:B (B excluded), "
                                                "e.g. 0,5,10:20");
  s.o_image->excludes(s.o_data);
  s.o_index->needs(s.o_data);
}

std::vector<int64_t> parse_indices(const std::string& spec, int64_t size, const std::string& dataset) {
  std::vector<int64_t> out;
  auto bad = [&](const std::string& why) {
    return std::runtime_error("--index '" + spec + "': " + why);
  };
  auto range_error = [&](int64_t i) {
    return std::runtime_error("--index " + std::to_string(i) + " is out of range for '" + dataset + "' (" +
                              std::to_string(size) + " images)");
  };
  std::stringstream ss(spec);
  std::string item;
  if (spec.empty()) throw bad("empty");
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos) {
      auto i = parse_index(item);
      if (!i) throw bad("'" + item + "' is not an index (expected I, I,J,... or A:B)");
      if (*i >= size) throw range_error(*i);
      out.push_back(*i);
    } else {
      auto a = parse_index(item.substr(0, colon)), b = parse_index(item.substr(colon + 1));
      if (!a || !b) throw bad("'" + item + "' is not a range A:B of indices");
      if (*b <= *a) throw bad("the range " + item + " is empty (B is excluded)");
      if (*a >= size) throw range_error(*a);
      if (*b > size) throw range_error(*b - 1);
      for (int64_t i = *a; i < *b; ++i) out.push_back(i);
    }
  }
  if (out.empty() || spec.back() == ',') throw bad("empty item");
  return out;
}

torch::Tensor load_input_image(const std::string& path, const std::string& flag, int64_t channels, int64_t height,
                               int64_t width, const std::string& hint) {
  return input_image_from_file(path, flag, channels, height, width, hint);
}

int64_t Session::batch() const { return args->batch_size > 0 ? args->batch_size : kDefaultSampleBatch; }

EpsModel Session::eps(int64_t n) {
  torch::Tensor labels;
  if (klass >= 0) labels = torch::full({n}, klass, torch::kLong);  // [n]
  return network_eps(*net, ck.config, *schedule, labels, args->guidance);
}

std::unique_ptr<Session> open_session(const std::string& verb, CommonArgs& a, const std::string& stem) {
  auto s = std::make_unique<Session>();
  s->verb = verb;
  s->args = &a;
  const bool npz = a.format == "npz";
  if (a.out.empty() && (a.out_dir.empty() || npz)) a.out = stem + (npz ? ".npz" : ".png");
  if (!a.out.empty()) ensure_writable_parent(a.out, "--out");
  if (!a.json.empty()) ensure_writable_parent(a.json, "--json");
  if (!a.baseline_out.empty()) ensure_writable_parent(a.baseline_out, "--baseline-out");
  if (!a.out_dir.empty() && fs::exists(a.out_dir) && !fs::is_directory(a.out_dir))
    throw std::runtime_error("--out-dir '" + a.out_dir + "': not a directory");
  s->ck = load_checkpoint(a.checkpoint);
  const auto& cfg = s->ck.config;
  s->channels = cfg.model.channels;
  s->size = cfg.model.image_size;
  s->num_classes = cfg.model.num_classes;
  s->T = cfg.diffusion.timesteps;
  if (!a.klass.empty()) {
    if (s->num_classes == 0)
      throw std::runtime_error("--class: " + a.checkpoint + " is an unconditional model (num_classes = 0)");
    auto y = parse_index(a.klass);
    if (!y || *y >= s->num_classes)
      throw std::runtime_error("--class '" + a.klass + "': expected a class index in [0, " +
                               std::to_string(s->num_classes - 1) + "]");
    s->klass = *y;
  }
  if (a.guidance != 0 && s->num_classes == 0)
    throw std::runtime_error("--guidance needs a class-conditional model; " + a.checkpoint + " has num_classes = 0");
  s->schedule = std::make_unique<Schedule>(parse_beta_schedule(cfg.diffusion.schedule), cfg.diffusion.timesteps);
  return s;
}

CLI::Option* add_variance_option(CLI::App* c, std::string& variance) {
  return c->add_option("--variance", variance, "Reverse-step variance: fixed_large (σ² = β_t) | fixed_small "
                                               "(σ² = β̃_t); default fixed_small: these methods take 100 "
                                               "respaced steps or fewer, where fixed_large leaves visible noise "
                                               "(the model's own setting is for its full chain)")
      ->check(CLI::IsMember({"fixed_large", "fixed_small"}));
}

VarianceType resolve_variance(const Session& s, const std::string& variance) {
  (void)s;
  return variance.empty() ? VarianceType::FixedSmall : parse_variance_type(variance);
}

void check_steps(const Session& s, int64_t steps, const std::string& flag) {
  if (steps < 0 || steps > s.T)
    throw std::runtime_error(flag + " " + std::to_string(steps) + ": must be in [1, " + std::to_string(s.T) +
                             "] (the model's timesteps), or 0 for the method's default");
}

Source load_source(const Session& s, const SourceArgs& src, bool image_is_low_res, int64_t factor) {
  Source out;
  if (src.image.empty() && src.data.empty()) throw std::runtime_error("give the input: --image FILE or --data SPEC");
  if (!src.image.empty() && !s.args->baseline_out.empty())
    throw std::runtime_error("--baseline-out needs --data (the baseline is scored on ground-truth images)");
  if (!src.image.empty()) {
    const int64_t side_len = image_is_low_res ? s.size / factor : s.size;
    const std::string hint = image_is_low_res ? "the low-resolution input of a " + std::to_string(s.size) + "x" +
                                                    std::to_string(s.size) + " model with --factor " +
                                                    std::to_string(factor)
                                              : "the model's image size";
    out.images = load_input_image(src.image, "--image", s.channels, side_len, side_len, hint).unsqueeze(0);
    out.description = src.image;
    return out;
  }
  DatasetOptions o;
  o.image_size = s.size;
  o.channels = s.channels;
  auto d = load_dataset(src.data, o);
  if (d.channels() != s.channels || d.height() != s.size || d.width() != s.size)
    throw std::runtime_error("--data '" + src.data + "': " + dims(d.channels(), d.height(), d.width()) +
                             " images; the model takes " + dims(s.channels, s.size, s.size));
  out.indices = parse_indices(src.index, d.size(), d.name);
  out.images = d.images.index_select(0, torch::tensor(out.indices, torch::kLong)).contiguous();  // a copy
  out.ground_truth = true;
  out.description = src.data + "[" + src.index + "]";
  return out;
}

void load_network(Session& s) {
  auto& a = *s.args;
  s.device = resolve_device(a.device);
  s.threads = set_threads(a.threads);
  const auto precision = parse_precision(a.precision);
  check_precision(precision, s.device, a.force_precision);
  if (!a.out_dir.empty()) ensure_writable_dir(a.out_dir, "--out-dir");
  s.net = load_sampling_model(s.ck, s.device, precision);
  s.t0 = std::chrono::steady_clock::now();
}

VerbRunner runner(Session& s) {
  VerbRunner r;
  r.schedule = s.schedule.get();
  r.device = s.device;
  r.batch = s.batch();
  r.eps = [&s](int64_t n) { return s.eps(n); };
  if (stderr_is_tty()) {
    r.on_step = [&s](int64_t first, int64_t n, int64_t i, int64_t steps, const std::string& what) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.t0).count();
      std::cerr << "\r\033[K" << s.verb << ": " << what << " " << first << "-" << first + n << " | step " << i << "/"
                << steps << " | " << std::fixed << std::setprecision(1) << el << " s" << std::flush;
      if (i == steps) std::cerr << "\r\033[K" << std::flush;
    };
  }
  return r;
}

Outputs rows_of(const torch::Tensor& degraded, const torch::Tensor& results, int64_t K, const torch::Tensor& truth) {
  Outputs o;
  const int64_t N = degraded.size(0);
  std::vector<torch::Tensor> cells;
  for (int64_t i = 0; i < N; ++i) {
    cells.push_back(degraded.slice(0, i, i + 1));
    cells.push_back(results.slice(0, i * K, (i + 1) * K));
    if (truth.defined()) cells.push_back(truth.slice(0, i, i + 1));
  }
  o.grid_cells = torch::cat(cells);
  o.cols = 1 + K + (truth.defined() ? 1 : 0);
  o.files = results;
  return o;
}

void finish(Session& s, const Outputs& o, nlohmann::json& j, int64_t results, const std::string& summary) {
  auto& a = *s.args;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.t0).count();
  j["seed"] = a.seed;
  j["seconds"] = secs;
  j["seconds_per_image"] = secs / static_cast<double>(std::max<int64_t>(results, 1));
  j["prediction"] = s.ck.config.diffusion.prediction;
  if (!a.klass.empty()) j["class"] = s.klass;
  if (s.num_classes > 0) j["guidance"] = a.guidance;
  const bool npz = a.format == "npz";
  if (!a.out.empty()) j[npz ? "npz" : "grid"] = a.out;
  if (!a.out_dir.empty()) j["out_dir"] = a.out_dir;
  if (!a.baseline_out.empty()) {
    if (!o.baseline.defined()) throw std::logic_error("--baseline-out without baseline images");
    save_image_npz(a.baseline_out, o.baseline);
    j["baseline_npz"] = a.baseline_out;
  }
  if (!a.out.empty()) {
    if (npz) save_image_arrays_npz(a.out, o.npz);
    else save_png(a.out, upscale(make_grid(o.grid_cells, o.cols), a.scale));
  }
  if (!a.out_dir.empty()) {
    for (int64_t i = 0; i < o.files.size(0); ++i) {
      std::ostringstream name;
      name << std::setw(6) << std::setfill('0') << i << ".png";
      save_png((fs::path(a.out_dir) / name.str()).string(), o.files[i]);
    }
  }
  const std::string line = j.dump();
  if (!a.json.empty()) write_file_atomic(a.json, line + "\n");
  std::cout << line << std::endl;
  std::cerr << summary << ", " << fixed2(secs) << " s";
  if (!a.out.empty()) std::cerr << "; wrote " << a.out;
  if (!a.out_dir.empty())
    std::cerr << (a.out.empty() ? "; wrote " : " and ") << o.files.size(0) << " PNGs in " << a.out_dir;
  std::cerr << "\n";
}

}  // namespace ddpm::app::restore
