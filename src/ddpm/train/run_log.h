// run_log.h — what a training run records in its run directory while it runs (rank 0 only): metrics.jsonl (one
// JSON record per log window or evaluation), TensorBoard events, the sample grids in samples/, and
// best.safetensors (the EMA weights with the lowest FID so far, kept across resumes). Opening it after a crash
// first removes what the crash left: stale temporary files and the metrics records of the steps to be redone.
//
//   DIR/metrics.jsonl        {"step", "loss", "lr", "grad_norm", ...} per window; {"step", "fid", ...} per evaluation
//   DIR/tensorboard/         a new event file per start (redone steps appear twice there; metrics.jsonl is trimmed)
//   DIR/samples/step_NNNNNNN.png
//   DIR/best.safetensors     weights-only, metadata "fid" and "eval"
//   DIR/config.toml          the run's whole config (write_run_config, before the first step)
//   DIR/classes.json         {"data", "classes"}: the folder-name -> label mapping of a class-conditional run
//
// Not here: the checkpoint (io/run_files.h: save_run_checkpoint), the loop that decides when to record
// (Trainer::run), the metrics themselves (eval/).
#pragma once

#include "ddpm/io/safetensors.h"
#include "ddpm/util/config.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ddpm {

class EventWriter;  // io/tensorboard.h

// Writes DIR/config.toml and, when `classes` is not empty, DIR/classes.json (crash-safely).
void write_run_config(const std::string& dir, const Config& cfg, const std::vector<std::string>& classes);

class RunLog {
 public:
  // Opens DIR for a run that continues at `step`: creates DIR/samples, cleans up after a crash, opens
  // metrics.jsonl for appending and, with `tensorboard`, a new TensorBoard event file.
  RunLog(const std::string& dir, int64_t step, bool tensorboard);
  ~RunLog();

  // Appends one record to metrics.jsonl, flushed; throws if the write fails (disk full).
  void record(const nlohmann::json& j);
  // TensorBoard scalars and images (no-ops without TensorBoard).
  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  void image(const std::string& tag, int64_t step, const torch::Tensor& grid_u8);  // [C,H,W] uint8
  // DIR/samples/step_0001000.png
  std::string sample_grid_path(int64_t step) const;
  // best.safetensors: whether `fid` beats the one stored there (an absent or unreadable file is beaten), and
  // saving `st` (checked finite) as the new best. save_best returns the file's path.
  bool beats_best(double fid) const;
  std::string save_best(const SafeTensors& st);

 private:
  std::string dir_;
  std::ofstream metrics_;
  std::unique_ptr<EventWriter> tb_;
};

}  // namespace ddpm
