// config.cpp — presets, TOML and JSON for the plain-data config in config.h.
#include "ddpm/util/config.h"

#include "ddpm/io/formats/toml_text.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace {

struct PresetEntry {
  const char* name;
  ModelConfig model;
  const char* about;
};

ModelConfig dit_model(int64_t image_size, int64_t channels, int64_t patch, int64_t depth, int64_t hidden, int64_t heads) {
  ModelConfig m;
  m.image_size = image_size;
  m.channels = channels;
  m.arch = "dit";
  m.patch_size = patch;
  m.depth = depth;
  m.hidden_size = hidden;
  m.num_heads = heads;
  m.mlp_ratio = 4.0;  // the paper's (and ViT's)
  m.dropout = 0.0;    // not used by the DiT
  return m;
}

const std::vector<PresetEntry>& presets() {
  static const std::vector<PresetEntry> p = {
      // The DDPM paper's CIFAR-10 model: 35,746,307 parameters.
      {"cifar10", ModelConfig{32, 3, 128, {1, 2, 2, 2}, 2, {16}, 0.1}, "DDPM CIFAR-10 model (35.7M)"},
      // The Fashion-MNIST model: 6,469,889 parameters.
      {"fmnist", ModelConfig{28, 1, 64, {1, 2, 2}, 2, {14}, 0.1}, "Fashion-MNIST model (6.5M)"},
      // CPU demo model: a quarter of the width, one ResBlock per level, attention only in the middle (7x7).
      {"fmnist-small", ModelConfig{28, 1, 32, {1, 2, 2}, 1, {}, 0.0}, "Fashion-MNIST CPU demo model"},
      // Test model: smallest that still exercises every block type (attention at 14x14 included).
      {"tiny", ModelConfig{28, 1, 32, {1, 2}, 1, {14}, 0.0}, "test model"},
      // DiTs (dit.h; docs/dit.md). Parameters ≈ depth·18·D² (per block: qkv 3D², proj D², MLP 8D², adaLN 6D²);
      // forward FLOPs ≈ depth·N·(24·D² + 4·N·D) for N tokens (the adaLN linears run once per image, not per token).
      // dit-fmnist: the fmnist-small UNet's size at its compute, to compare the two at equal CPU time: p = 2 (196
      // tokens of 2×2 pixels: the paper's best patch size; p = 4 leaves 7×7 tokens), 6 blocks of D = 96 with 4
      // heads of 24: 1,057,444 parameters, 0.35 GFLOP/image (fmnist-small: 1,062,497 and 0.37). Width 192 would be
      // 4.2M parameters and 1.2 GFLOP/image, 3× the UNet.
      {"dit-fmnist", dit_model(28, 1, 2, 6, 96, 4), "Fashion-MNIST DiT, fmnist-small's size"},
      // dit-cifar: DiT-S/2 (the paper's Table 1 DiT-S: 12 blocks, D = 384, 6 heads of 64; p = 2) on 32×32 RGB, 256
      // tokens: 32,471,436 parameters and 12.1 GFLOP/image, the DDPM CIFAR-10 UNet's size and compute (35.7M, 12.4).
      {"dit-cifar", dit_model(32, 3, 2, 12, 384, 6), "CIFAR-10 DiT-S/2 (32.5M)"},
  };
  return p;
}

template <class T>
std::vector<T> array_of(const toml::node& node, const std::string& where) {
  const auto* arr = node.as_array();
  if (!arr) throw std::runtime_error(where + ": expected an array of integers");
  std::vector<T> out;
  for (const auto& el : *arr) {
    auto v = el.value<int64_t>();
    if (!v) throw std::runtime_error(where + ": expected an array of integers");
    out.push_back(static_cast<T>(*v));
  }
  return out;
}

template <class T>
T scalar_of(const toml::node& node, const std::string& where) {
  if constexpr (std::is_same_v<T, bool>) {
    if (auto v = node.value_exact<bool>()) return *v;
    throw std::runtime_error(where + ": expected true or false");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = node.value_exact<std::string>()) return *v;
    throw std::runtime_error(where + ": expected a string");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (auto v = node.value<double>()) return static_cast<T>(*v);
    throw std::runtime_error(where + ": expected a number");
  } else {
    if (auto v = node.value_exact<int64_t>()) {
      if (std::is_unsigned_v<T> && *v < 0) throw std::runtime_error(where + ": expected a non-negative integer");
      return static_cast<T>(*v);
    }
    throw std::runtime_error(where + ": expected an integer");
  }
}

// One table of key -> setter, so the TOML reader, the writer and the unknown-key check share one list.
using Setter = std::function<void(Config&, const toml::node&, const std::string&)>;

#define FIELD(sec, name, type) \
  {#name, [](Config& c, const toml::node& n, const std::string& w) { c.sec.name = scalar_of<type>(n, w); }}

const std::map<std::string, std::map<std::string, Setter>>& setters() {
  static const std::map<std::string, std::map<std::string, Setter>> s = {
      {"model",
       {FIELD(model, image_size, int64_t), FIELD(model, channels, int64_t), FIELD(model, ch, int64_t),
        {"ch_mult", [](Config& c, const toml::node& n, const std::string& w) { c.model.ch_mult = array_of<int64_t>(n, w); }},
        FIELD(model, num_res_blocks, int64_t),
        {"attn_resolutions",
         [](Config& c, const toml::node& n, const std::string& w) { c.model.attn_resolutions = array_of<int64_t>(n, w); }},
        FIELD(model, dropout, double), FIELD(model, num_classes, int64_t), FIELD(model, arch, std::string),
        FIELD(model, patch_size, int64_t), FIELD(model, depth, int64_t), FIELD(model, hidden_size, int64_t),
        FIELD(model, num_heads, int64_t), FIELD(model, mlp_ratio, double)}},
      {"diffusion",
       {FIELD(diffusion, schedule, std::string), FIELD(diffusion, timesteps, int64_t),
        FIELD(diffusion, variance, std::string), FIELD(diffusion, prediction, std::string)}},
      {"train",
       {FIELD(train, data, std::string), FIELD(train, out, std::string), FIELD(train, steps, int64_t),
        FIELD(train, batch_size, int64_t), FIELD(train, lr, double), FIELD(train, warmup, int64_t),
        FIELD(train, lr_schedule, std::string), FIELD(train, loss_weight, std::string),
        FIELD(train, min_snr_gamma, double), FIELD(train, grad_clip, double), FIELD(train, ema_decay, double), FIELD(train, flip, bool),
        FIELD(train, label_dropout, double),
        FIELD(train, seed, uint64_t), FIELD(train, save_every, int64_t), FIELD(train, sample_every, int64_t),
        FIELD(train, keep_checkpoints, int64_t), FIELD(train, max_nonfinite, int64_t),
        FIELD(train, sample_num, int64_t), FIELD(train, sample_steps, int64_t), FIELD(train, log_every, int64_t),
        FIELD(train, device, std::string), FIELD(train, threads, int64_t), FIELD(train, precision, std::string),
        FIELD(train, tensorboard, bool),
        FIELD(train, cache, std::string), FIELD(train, allow_upscale, bool), FIELD(train, skip_bad_images, bool),
        FIELD(train, eval_every, int64_t), FIELD(train, eval_samples, int64_t), FIELD(train, eval_sampler, std::string),
        FIELD(train, eval_steps, int64_t), FIELD(train, eval_ref, std::string), FIELD(train, eval_features, std::string)}},
  };
  return s;
}
#undef FIELD

// The [model] keys of one arch only (the others apply to every arch). A document that sets a key of another arch
// than the model's (after a preset and every key are applied) is an error: it would be silently ignored.
const std::vector<std::string>& unet_keys() {
  static const std::vector<std::string> k = {"ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout"};
  return k;
}
const std::vector<std::string>& dit_keys() {
  static const std::vector<std::string> k = {"patch_size", "depth", "hidden_size", "num_heads", "mlp_ratio"};
  return k;
}
bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

void apply_table(Config& cfg, const toml::table& root, const std::string& source) {
  if (auto* p = root.get("preset")) {
    cfg.preset = scalar_of<std::string>(*p, source + ": preset");
    cfg.model = preset_model(cfg.preset);
  }
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (k == "preset") continue;
    auto sec = setters().find(k);
    if (sec == setters().end())
      throw std::runtime_error(source + ": unknown key '" + k + "' (expected preset, [model], [diffusion], [train])");
    const auto* table = node.as_table();
    if (!table) throw std::runtime_error(source + ": '" + k + "' must be a table ([" + k + "])");
    for (const auto& [fkey, fnode] : *table) {
      const std::string f(fkey.str());
      auto it = sec->second.find(f);
      if (it == sec->second.end()) throw std::runtime_error(source + ": unknown key '" + k + "." + f + "'");
      it->second(cfg, fnode, source + ": " + k + "." + f);
    }
  }
  if (const auto* model = root.get_as<toml::table>("model")) {
    const auto& other = cfg.model.arch == "dit" ? unet_keys() : dit_keys();
    for (const auto& [fkey, fnode] : *model)
      if (contains(other, std::string(fkey.str())))
        throw std::runtime_error(source + ": model." + std::string(fkey.str()) + " does not apply to model.arch = '" +
                                 cfg.model.arch + "'");
  }
}

template <class T>
toml::array to_toml_array(const std::vector<T>& v) {
  toml::array a;
  for (auto x : v) a.push_back(static_cast<int64_t>(x));
  return a;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.emplace_back(p.name);
  return names;
}

ModelConfig preset_model(const std::string& name) {
  std::string all;
  for (const auto& p : presets()) {
    if (name == p.name) return p.model;
    all += (all.empty() ? "" : ", ") + std::string(p.name);
  }
  throw std::runtime_error("unknown preset '" + name + "' (expected one of: " + all + ")");
}

void apply_toml_string(Config& cfg, const std::string& text, const std::string& source) {
  // toml++ 3.3 is given ASCII only (formats/toml_text.h: non-ASCII input can reach undefined behaviour in it).
  const std::string ascii = toml_to_ascii(text, source);
  toml::table root;
  try {
    root = toml::parse(ascii, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source << ":" << e.source().begin.line << ": " << e.description();
    throw std::runtime_error(os.str());
  }
  apply_table(cfg, root, source);
}

void apply_toml_file(Config& cfg, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  apply_toml_string(cfg, ss.str(), path);
}

namespace {
// The one writer of the field list: TOML and JSON are both printed from this table.
// A UNet's table is what it was before the DiT (no arch key: the default), so its checkpoints read as before.
toml::table to_table(const ModelConfig& m) {
  if (m.arch == "dit")
    return toml::table{{"arch", m.arch}, {"image_size", m.image_size}, {"channels", m.channels},
                       {"num_classes", m.num_classes}, {"patch_size", m.patch_size}, {"depth", m.depth},
                       {"hidden_size", m.hidden_size}, {"num_heads", m.num_heads}, {"mlp_ratio", m.mlp_ratio}};
  toml::table t{{"image_size", m.image_size}, {"channels", m.channels}, {"ch", m.ch},
                {"ch_mult", to_toml_array(m.ch_mult)}, {"num_res_blocks", m.num_res_blocks},
                {"attn_resolutions", to_toml_array(m.attn_resolutions)}, {"dropout", m.dropout},
                {"num_classes", m.num_classes}};
  if (m.arch != "unet") t.insert("arch", m.arch);  // (invalid: validate() names it)
  return t;
}

toml::table to_table(const Config& c) {
  toml::table diffusion{{"schedule", c.diffusion.schedule}, {"timesteps", c.diffusion.timesteps},
                        {"variance", c.diffusion.variance}, {"prediction", c.diffusion.prediction}};
  const auto& t = c.train;
  toml::table train{{"data", t.data}, {"out", t.out}, {"steps", t.steps}, {"batch_size", t.batch_size},
                    {"lr", t.lr}, {"warmup", t.warmup}, {"lr_schedule", t.lr_schedule},
                    {"loss_weight", t.loss_weight}, {"min_snr_gamma", t.min_snr_gamma}, {"grad_clip", t.grad_clip}, {"ema_decay", t.ema_decay},
                    {"flip", t.flip}, {"label_dropout", t.label_dropout}, {"seed", static_cast<int64_t>(t.seed)}, {"save_every", t.save_every},
                    {"keep_checkpoints", t.keep_checkpoints}, {"max_nonfinite", t.max_nonfinite},
                    {"sample_every", t.sample_every}, {"sample_num", t.sample_num},
                    {"sample_steps", t.sample_steps}, {"log_every", t.log_every}, {"device", t.device},
                    {"threads", t.threads}, {"precision", t.precision}, {"tensorboard", t.tensorboard}, {"cache", t.cache},
                    {"allow_upscale", t.allow_upscale}, {"skip_bad_images", t.skip_bad_images},
                    {"eval_every", t.eval_every}, {"eval_samples", t.eval_samples}, {"eval_sampler", t.eval_sampler},
                    {"eval_steps", t.eval_steps}, {"eval_ref", t.eval_ref}, {"eval_features", t.eval_features}};
  auto model = to_table(c.model);
  // A UNet over a DiT preset names its arch: read back, the preset alone would make it a DiT.
  for (const auto& p : presets())
    if (c.preset == p.name && p.model.arch != c.model.arch && !model.contains("arch")) model.insert("arch", c.model.arch);
  return toml::table{{"preset", c.preset}, {"model", model}, {"diffusion", diffusion}, {"train", train}};
}

nlohmann::json table_to_json(const toml::table& t) {
  std::ostringstream os;
  os << toml::json_formatter{t};
  return nlohmann::json::parse(os.str());
}
}  // namespace

std::string to_toml(const Config& c) {
  std::ostringstream os;
  os << "# Effective configuration of this run, written by ddpm train.\n" << to_table(c) << "\n";
  return os.str();
}

nlohmann::json to_json(const ModelConfig& m) { return table_to_json(to_table(m)); }

nlohmann::json to_json(const Config& c) { return table_to_json(to_table(c)); }

Config config_from_json(const nlohmann::json& j) {
  // Round-trip through TOML so the unknown-key and type checks are the same code.
  if (!j.is_object()) throw std::runtime_error("config is not a JSON object");
  toml::table root;
  for (const auto& [k, v] : j.items()) {
    if (k == "preset") {
      root.insert("preset", v.get<std::string>());
      continue;
    }
    if (!v.is_object()) throw std::runtime_error("config section '" + k + "' is not an object");
    toml::table sec;
    for (const auto& [fk, fv] : v.items()) {
      if (fv.is_boolean()) sec.insert(fk, fv.get<bool>());
      else if (fv.is_number_integer()) sec.insert(fk, fv.get<int64_t>());
      else if (fv.is_number()) sec.insert(fk, fv.get<double>());
      else if (fv.is_string()) sec.insert(fk, fv.get<std::string>());
      else if (fv.is_array()) {
        toml::array a;
        for (const auto& e : fv) {  // (a float here would convert to int64 with undefined behaviour: found by fuzzing)
          if (!e.is_number_integer()) throw std::runtime_error("config key '" + k + "." + fk + "' is not an array of integers");
          a.push_back(e.get<int64_t>());
        }
        sec.insert(fk, a);
      } else throw std::runtime_error("config key '" + k + "." + fk + "' has an unsupported type");
    }
    root.insert(k, sec);
  }
  Config c;
  apply_table(c, root, "checkpoint config");
  return c;
}

const std::vector<std::string>& resume_mutable_fields() {
  // What a resumed run may change: how long it runs, where and how often it writes, and on what hardware. Not
  // the model, the diffusion, the data or the optimisation (batch size, learning rate, seed, ...), which would
  // make the run something else than what its checkpoint and metrics say.
  static const std::vector<std::string> f = {
      "train.out",          "train.steps",       "train.save_every", "train.keep_checkpoints", "train.max_nonfinite",
      "train.sample_every", "train.sample_num",  "train.sample_steps", "train.log_every",      "train.device",
      "train.threads",      "train.tensorboard", "train.cache",      "train.skip_bad_images", "train.eval_every",
      "train.eval_samples", "train.eval_sampler", "train.eval_steps", "train.eval_ref",     "train.eval_features",
      "train.precision"};
  return f;
}

std::vector<std::string> resume_differences(const Config& run, const Config& now) {
  const auto a = to_json(run), b = to_json(now);
  const auto& skip = resume_mutable_fields();
  std::vector<std::string> out;
  if (run.preset != now.preset) out.push_back("preset: " + a["preset"].dump() + " -> " + b["preset"].dump());
  for (const auto& [sec, fields] : a.items()) {
    if (!fields.is_object()) continue;
    for (const auto& [k, v] : fields.items()) {
      const std::string key = sec + "." + k;
      if (std::find(skip.begin(), skip.end(), key) != skip.end()) continue;
      // A key only one side has (the model's fields of another arch): "(none)" on the other.
      const bool has = b.contains(sec) && b[sec].contains(k);
      if (!has || v != b[sec][k]) out.push_back(key + ": " + v.dump() + " -> " + (has ? b[sec][k].dump() : "(none)"));
    }
  }
  for (const auto& [k, w] : b["model"].items())
    if (!a["model"].contains(k)) out.push_back("model." + k + ": (none) -> " + w.dump());
  return out;
}

void validate(const Config& c) {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw std::runtime_error(msg);
  };
  const auto& m = c.model;
  need(m.arch == "unet" || m.arch == "dit", "model.arch must be unet or dit, got '" + m.arch + "'");
  need(m.image_size > 0, "model.image_size must be positive");
  need(m.channels > 0, "model.channels must be positive");
  if (m.arch == "unet") {
    need(m.ch > 0 && m.ch % 32 == 0, "model.ch must be a positive multiple of 32 (GroupNorm(32))");
    need(!m.ch_mult.empty(), "model.ch_mult must not be empty");
    for (auto k : m.ch_mult) need(k > 0, "model.ch_mult entries must be positive");
    need(m.num_res_blocks > 0, "model.num_res_blocks must be positive");
    const int64_t down = int64_t(1) << (m.ch_mult.size() - 1);
    need(m.image_size % down == 0, "model.image_size " + std::to_string(m.image_size) + " is not divisible by " +
                                       std::to_string(down) + " (2^(levels-1))");
    need(m.dropout >= 0.0 && m.dropout < 1.0, "model.dropout must be in [0, 1)");
  } else {
    need(m.patch_size > 0, "model.patch_size must be positive");
    need(m.image_size % m.patch_size == 0, "model.image_size " + std::to_string(m.image_size) +
                                               " is not divisible by model.patch_size " + std::to_string(m.patch_size));
    need(m.depth > 0, "model.depth must be positive");
    need(m.hidden_size > 0 && m.hidden_size % 4 == 0,
         "model.hidden_size must be a positive multiple of 4 (the 2-D sin-cos position embedding)");
    need(m.num_heads > 0, "model.num_heads must be positive");
    need(m.hidden_size % m.num_heads == 0, "model.hidden_size " + std::to_string(m.hidden_size) +
                                               " is not divisible by model.num_heads " + std::to_string(m.num_heads));
    need(m.mlp_ratio > 0 && m.mlp_ratio <= 64 && std::llround(m.hidden_size * m.mlp_ratio) >= 1,
         "model.mlp_ratio must be in (0, 64]");
  }
  need(m.num_classes >= 0, "model.num_classes must be >= 0");
  need(c.diffusion.timesteps >= 2, "diffusion.timesteps must be at least 2");
  need(c.diffusion.schedule == "linear" || c.diffusion.schedule == "cosine",
       "diffusion.schedule must be linear or cosine, got '" + c.diffusion.schedule + "'");
  need(c.diffusion.variance == "fixed_small" || c.diffusion.variance == "fixed_large",
       "diffusion.variance must be fixed_small or fixed_large, got '" + c.diffusion.variance + "'");
  need(c.diffusion.prediction == "eps" || c.diffusion.prediction == "x0" || c.diffusion.prediction == "v",
       "diffusion.prediction must be eps, x0 or v, got '" + c.diffusion.prediction + "'");
  const auto& t = c.train;
  need(t.label_dropout >= 0 && t.label_dropout < 1, "train.label_dropout must be in [0, 1)");
  need(t.steps > 0, "train.steps must be positive, got " + std::to_string(t.steps));
  need(t.batch_size > 0, "train.batch_size must be positive, got " + std::to_string(t.batch_size));
  need(t.lr > 0, "train.lr must be positive");
  need(t.warmup >= 0, "train.warmup must be >= 0");
  need(t.lr_schedule == "constant" || t.lr_schedule == "cosine" || t.lr_schedule == "linear",
       "train.lr_schedule must be constant, cosine or linear, got '" + t.lr_schedule + "'");
  need(t.loss_weight == "uniform" || t.loss_weight == "min_snr",
       "train.loss_weight must be uniform or min_snr, got '" + t.loss_weight + "'");
  need(t.min_snr_gamma > 0, "train.min_snr_gamma must be positive");
  need(t.grad_clip >= 0, "train.grad_clip must be >= 0");
  need(t.ema_decay >= 0 && t.ema_decay < 1, "train.ema_decay must be in [0, 1)");
  need(t.save_every >= 0 && t.sample_every >= 0, "train.save_every and train.sample_every must be >= 0");
  need(t.keep_checkpoints >= 0, "train.keep_checkpoints must be >= 0");
  need(t.max_nonfinite >= 0, "train.max_nonfinite must be >= 0");
  need(t.sample_num > 0, "train.sample_num must be positive");
  need(t.sample_steps > 0, "train.sample_steps must be positive");
  need(t.log_every > 0, "train.log_every must be positive");
  need(t.eval_every >= 0, "train.eval_every must be >= 0");
  need(t.eval_samples >= 2, "train.eval_samples must be >= 2");
  need(t.eval_steps > 0, "train.eval_steps must be positive");
  need(t.threads >= 0, "train.threads must be >= 0");
  need(t.precision == "fp32" || t.precision == "bf16", "train.precision must be fp32 or bf16, got '" + t.precision + "'");
  need(t.device == "auto" || t.device == "cpu" || t.device == "cuda",
       "train.device must be auto, cpu or cuda, got '" + t.device + "'");
}

}  // namespace ddpm
