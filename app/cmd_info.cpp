// cmd_info.cpp — `ddpm info`: JSON about a checkpoint, a preset, or a run directory (steps, losses, speed, best
// FID, files).
#include "commands.h"

#include "ddpm/io/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace ddpm::app {
namespace fs = std::filesystem;
namespace {

// A run directory written by `ddpm train`: its checkpoint (step, config), metrics.jsonl (losses, speed, FID if
// evaluated during training), samples, TensorBoard files.
nlohmann::json run_summary(const std::string& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error("--run '" + dir + "': not a directory");
  const fs::path d(dir);
  const auto ckpt = d / "checkpoint.safetensors", metrics = d / "metrics.jsonl";
  if (!fs::exists(ckpt) && !fs::exists(metrics))
    throw std::runtime_error("--run '" + dir + "': not a run directory (no checkpoint.safetensors or metrics.jsonl)");
  nlohmann::json j;
  j["run"] = dir;
  if (fs::exists(ckpt)) {
    auto ck = load_checkpoint(ckpt.string());
    // Parameters counted from the stored weights (model.*, or ema.* in a weights-only file): no network is built.
    const std::string prefix = ck.has("model.") ? "model." : "ema.";
    int64_t params = 0;
    for (const auto& [name, tensor] : ck.st.tensors)
      if (name.rfind(prefix, 0) == 0) params += tensor.numel();
    j["checkpoint"] = ckpt.string();
    j["step"] = ck.step;
    j["steps_planned"] = ck.config.train.steps;
    j["preset"] = ck.config.preset;
    j["data"] = ck.config.train.data;
    j["parameters"] = params;
    j["batch_size"] = ck.config.train.batch_size;
  }
  if (fs::exists(metrics)) {
    std::ifstream in(metrics);
    std::string line;
    int64_t records = 0, lineno = 0;
    nlohmann::json last, best_fid;
    double elapsed = 0, rate_sum = 0;
    int64_t rate_n = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      nlohmann::json r;
      try {
        r = nlohmann::json::parse(line);
      } catch (const std::exception&) {
        throw std::runtime_error(metrics.string() + ":" + std::to_string(lineno) + ": not a JSON record");
      }
      ++records;
      if (r.contains("loss")) last = r;
      if (r.contains("images_per_sec") && r["images_per_sec"].is_number()) {
        rate_sum += r["images_per_sec"].get<double>();
        ++rate_n;
      }
      if (r.contains("elapsed_s") && r["elapsed_s"].is_number()) elapsed = r["elapsed_s"].get<double>();
      if (r.contains("fid") && r["fid"].is_number() && (best_fid.is_null() || r["fid"] < best_fid["fid"]))
        best_fid = {{"fid", r["fid"]}, {"step", r.value("step", int64_t(-1))}};
    }
    j["metrics_records"] = records;
    if (!last.is_null()) {
      j["last_logged_step"] = last.value("step", int64_t(-1));
      j["last_loss"] = last["loss"];
      for (int k = 0; k < 4; ++k)
        if (last.contains("loss_q" + std::to_string(k))) j["last_loss_q" + std::to_string(k)] = last["loss_q" + std::to_string(k)];
    }
    if (rate_n) j["images_per_sec"] = rate_sum / static_cast<double>(rate_n);  // mean over the logged windows
    j["last_start_elapsed_s"] = elapsed;  // of the latest start (a resume restarts the clock)
    j["best_fid"] = best_fid;  // null unless the run evaluated FID
  }
  int64_t grids = 0;
  std::string latest;
  if (fs::is_directory(d / "samples"))
    for (const auto& e : fs::directory_iterator(d / "samples"))
      if (e.path().extension() == ".png") {
        ++grids;
        if (e.path().string() > latest) latest = e.path().string();
      }
  j["sample_grids"] = grids;
  if (!latest.empty()) j["latest_grid"] = latest;
  int64_t events = 0;
  if (fs::is_directory(d / "tensorboard"))
    for (const auto& e : fs::directory_iterator(d / "tensorboard"))
      if (e.path().filename().string().find("tfevents") != std::string::npos) ++events;
  j["tensorboard_files"] = events;
  if (fs::exists(d / "classes.json")) {
    std::ifstream cin(d / "classes.json");
    try {
      j["classes"] = nlohmann::json::parse(cin)["classes"];
    } catch (const std::exception&) {
      throw std::runtime_error((d / "classes.json").string() + ": not valid JSON");
    }
  }
  return j;
}

}  // namespace

Command add_info(CLI::App& root) {
  auto checkpoint = std::make_shared<std::string>();
  auto preset = std::make_shared<std::string>();
  auto run_dir = std::make_shared<std::string>();
  auto* c = root.add_subcommand("info", "Print JSON about a checkpoint, a preset or a run directory");
  auto* oc = c->add_option("--checkpoint", *checkpoint, "Checkpoint or weights file");
  auto* op = c->add_option("--preset", *preset, "Model preset name");
  auto* orun = c->add_option("--run", *run_dir, "Run directory of `ddpm train`: steps, last loss, images/s, best FID, files");
  oc->excludes(op);
  oc->excludes(orun);
  op->excludes(orun);
  c->require_option(1);
  auto run = [=]() -> int {
    if (!run_dir->empty()) {
      std::cout << run_summary(*run_dir).dump(2) << std::endl;
      return 0;
    }
    nlohmann::json j;
    Config cfg;
    if (!checkpoint->empty()) {
      auto ck = load_checkpoint(*checkpoint);
      cfg = ck.config;
      j["checkpoint"] = *checkpoint;
      j["step"] = ck.step;
      j["has_ema"] = ck.has("ema.");
      j["has_optimizer"] = ck.has("optim.");
      j["tensors"] = ck.st.tensors.size();
    } else {
      cfg.model = preset_model(*preset);
      cfg.preset = *preset;
    }
    Backbone net = make_backbone(cfg.model);
    j["preset"] = cfg.preset;
    j["arch"] = cfg.model.arch;
    j["parameters"] = count_parameters(*net);
    j["forward_gflops_per_image"] = net->forward_flops_per_image() / 1e9;
    j["config"] = checkpoint->empty() ? nlohmann::json{{"model", to_json(cfg.model)}} : to_json(cfg);
    std::cout << j.dump(2) << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
