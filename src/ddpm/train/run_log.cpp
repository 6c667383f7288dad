// run_log.cpp — see run_log.h.
#include "ddpm/train/run_log.h"

#include "ddpm/io/checkpoint.h"
#include "ddpm/io/image_io.h"
#include "ddpm/io/run_files.h"
#include "ddpm/io/tensorboard.h"

#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;

void write_run_config(const std::string& dir, const Config& cfg, const std::vector<std::string>& classes) {
  const fs::path out(dir);
  write_file_atomic((out / "config.toml").string(), to_toml(cfg));
  if (!classes.empty()) {  // the folder-name -> label mapping of this run
    nlohmann::json cj = {{"data", cfg.train.data}, {"classes", classes}};
    write_file_atomic((out / "classes.json").string(), cj.dump(2) + "\n");
  }
}

RunLog::RunLog(const std::string& dir, int64_t step, bool tensorboard) : dir_(dir) {
  const fs::path out(dir);
  fs::create_directories(out / "samples");
  // After a crash: drop the leftovers of interrupted writes and the records of steps that will be redone.
  remove_stale_temp_files(out.string());
  remove_stale_temp_files((out / "samples").string());
  trim_metrics((out / "metrics.jsonl").string(), step);
  metrics_.open(out / "metrics.jsonl", std::ios::app);
  if (!metrics_) throw std::runtime_error((out / "metrics.jsonl").string() + ": cannot open for writing");
  if (tensorboard) tb_ = std::make_unique<EventWriter>((out / "tensorboard").string());
}

RunLog::~RunLog() = default;

void RunLog::record(const nlohmann::json& j) {
  metrics_ << j.dump() << "\n" << std::flush;
  if (!metrics_) throw std::runtime_error((fs::path(dir_) / "metrics.jsonl").string() + ": write failed (disk full?)");
}

void RunLog::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (tb_) tb_->add_scalars(step, values);
}

void RunLog::image(const std::string& tag, int64_t step, const torch::Tensor& grid) {
  if (tb_) tb_->add_image(tag, step, encode_png(grid), static_cast<int>(grid.size(1)), static_cast<int>(grid.size(2)),
                          static_cast<int>(grid.size(0)));
}

std::string RunLog::sample_grid_path(int64_t step) const {
  std::ostringstream name;
  name << "step_" << std::setw(7) << std::setfill('0') << step << ".png";
  return (fs::path(dir_) / "samples" / name.str()).string();
}

bool RunLog::beats_best(double fid) const {
  const auto path = (fs::path(dir_) / "best.safetensors").string();
  double best = std::numeric_limits<double>::infinity();
  if (fs::exists(path)) {
    try {
      auto st = safetensors_load(path);
      auto it = st.metadata.find("fid");
      if (it != st.metadata.end()) best = std::stod(it->second);
    } catch (const std::exception&) {
      // unreadable: the next evaluation replaces it
    }
  }
  return fid < best;
}

std::string RunLog::save_best(const SafeTensors& st) {
  const auto path = (fs::path(dir_) / "best.safetensors").string();
  check_finite(st, path);
  safetensors_save(path, st);
  return path;
}

}  // namespace ddpm
