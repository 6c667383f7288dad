// train_loop.cpp — Trainer::run (trainer.h): the loop around train_step — stop requests, the non-finite guard,
// the log line and its records, sample grids, evaluation and checkpoints at their intervals. What it writes into
// the run directory goes through RunLog (run_log.h) and save_run_checkpoint (io/run_files.h).
// Not here: the step itself and the batches (trainer.cpp).
#include "ddpm/train/trainer.h"

#include "ddpm/io/checkpoint.h"
#include "ddpm/io/run_files.h"
#include "ddpm/train/run_log.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;
namespace {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<int64_t>(s + 0.5);
  std::ostringstream os;
  if (total >= 3600) os << total / 3600 << "h" << std::setw(2) << std::setfill('0') << (total % 3600) / 60 << "m";
  else if (total >= 60) os << total / 60 << "m" << std::setw(2) << std::setfill('0') << total % 60 << "s";
  else os << total << "s";
  return os.str();
}

}  // namespace

bool Trainer::run(const TrainHooks& hooks) {
  const bool rank0 = comm_->rank() == 0;
  const auto& tc = cfg_.train;
  const fs::path out(tc.out);
  const std::string ckpt = (out / "checkpoint.safetensors").string();
  std::unique_ptr<RunLog> run_log;  // rank 0's records in the run directory (run_log.h)
  if (rank0) run_log = std::make_unique<RunLog>(out.string(), step_, tc.tensorboard && step_ < tc.steps);
  auto log = [&](const std::string& line) {
    if (rank0 && hooks.log) *hooks.log << line << std::flush;
  };
  if (step_ >= tc.steps) {
    log("run already at step " + std::to_string(step_) + " of " + std::to_string(tc.steps) + "; nothing to do\n");
    return true;
  }
  log("training " + cfg_.preset + " (" + std::to_string(count_parameters(*model_)) + " parameters) on " +
      data_.name + " (" + std::to_string(data_.size()) + " images), steps " + std::to_string(step_) + " -> " +
      std::to_string(tc.steps) + ", batch " + std::to_string(tc.batch_size) + ", world size " +
      std::to_string(comm_->world_size()) + (multi_process_
          ? " (" + comm_->backend() + ", " + std::to_string(tc.batch_size / comm_->world_size()) + " per rank)"
          : std::string()) +
      ", device " + device_.str() + ", threads " + std::to_string(torch::get_num_threads()) + "\n");

  using clock = std::chrono::steady_clock;
  const auto t_begin = clock::now();
  auto t_window = t_begin;
  const int64_t first_step = step_;
  double loss_sum = 0, gnorm_sum = 0;
  std::array<double, 4> q_sum{}, q_cnt{};
  int64_t window_steps = 0, window_good = 0;
  int64_t skipped_total = 0, skipped_in_a_row = 0, last_saved = -1;
  StepStats last;
  const bool multi = multi_process_;
  uint64_t checksum = 0;  // of the last saved state, when several processes compare their replicas
  auto save_checkpoint = [&]() {
    if (multi) checksum = check_replicas();  // collective: every rank reaches every save point at the same step
    last_saved = step_;           // on every rank, so that all take the same decisions from it
    if (!rank0) return;
    auto st = checkpoint_state();
    check_finite(st, ckpt);
    save_run_checkpoint(out.string(), step_, safetensors_serialize(st), tc.keep_checkpoints);
  };

  double comm_sum = 0;
  while (step_ < tc.steps) {
    const bool want_stop = hooks.stop && hooks.stop->load();
    if (want_stop && !multi) {
      if (hooks.tty) log("\n");
      log("interrupted at step " + std::to_string(step_) + "; saving checkpoint\n");
      save_checkpoint();
      return false;
    }
    // Several processes: a stop request (any rank's) travels with the step's loss, so all stop after the same step.
    last = train_step(want_stop);
    comm_sum += last.comm_s;
    ++window_steps;
    if (last.skipped) {
      ++skipped_total;
      ++skipped_in_a_row;
      if (hooks.tty) log("\n");
      auto num = [](double v) { return std::isnan(v) ? std::string("nan") : std::isinf(v) ? std::string(v > 0 ? "inf" : "-inf") : std::to_string(v); };
      log("step " + std::to_string(step_) + ": non-finite loss (" + num(last.loss) + ") or gradient norm (" +
          num(last.grad_norm) + "); update skipped (" + std::to_string(skipped_in_a_row) + " in a row, " +
          std::to_string(skipped_total) + " in this run)\n");
      if (tc.max_nonfinite > 0 && skipped_in_a_row >= tc.max_nonfinite)
        throw std::runtime_error(
            "training stopped at step " + std::to_string(step_) + " after " + std::to_string(skipped_in_a_row) +
            " non-finite losses or gradients in a row (train.max_nonfinite); " +
            (last_saved >= 0 ? "the last checkpoint (step " + std::to_string(last_saved) + ") is " + ckpt
                             : std::string("the checkpoint in ") + out.string() + ", if any, is untouched") +
            "; try a lower learning rate");
    } else {
      skipped_in_a_row = 0;
      loss_sum += last.loss;
      gnorm_sum += last.grad_norm;
      for (int k = 0; k < 4; ++k) q_sum[k] += last.q_loss_sum[k], q_cnt[k] += last.q_count[k];
      ++window_good;
    }

    const bool log_now = step_ % tc.log_every == 0 || step_ == tc.steps;
    if (log_now || hooks.tty) {
      const auto now = clock::now();
      const double since_begin = std::chrono::duration<double>(now - t_begin).count();
      const double rate = static_cast<double>((step_ - first_step) * tc.batch_size) / std::max(since_begin, 1e-9);
      const double eta = static_cast<double>((tc.steps - step_) * tc.batch_size) / std::max(rate, 1e-9);
      std::ostringstream line;
      line << "step " << step_ << "/" << tc.steps << " | loss " << std::fixed << std::setprecision(4)
           << (log_now ? loss_sum / std::max<int64_t>(window_good, 1) : last.loss) << " | lr " << std::scientific << std::setprecision(2)
           << last.lr << std::fixed << std::setprecision(1) << " | " << rate << " img/s | ETA "
           << format_duration(eta);
      if (skipped_total > 0) line << " | skipped " << skipped_total;
      const double win_s = std::chrono::duration<double>(now - t_window).count();
      if (multi && log_now) line << " | comm " << std::setprecision(0) << 100.0 * comm_sum / std::max(win_s, 1e-9) << "%";
      if (hooks.tty) log("\r\033[K" + line.str());
      if (log_now) {
        const double win_rate = static_cast<double>(window_steps * tc.batch_size) / std::max(win_s, 1e-9);
        if (!hooks.tty) log(line.str() + "\n");
        if (rank0) {
          // loss and grad_norm average the steps that were not skipped (null if none); skipped counts the rest.
          nlohmann::json j = {{"step", step_},
                              {"loss", window_good ? nlohmann::json(loss_sum / window_good) : nlohmann::json()},
                              {"lr", last.lr},
                              {"grad_norm", window_good ? nlohmann::json(gnorm_sum / window_good) : nlohmann::json()},
                              {"skipped", window_steps - window_good},
                              {"images_per_sec", win_rate},
                              {"elapsed_s", since_begin}};
          if (multi) {
            j["world_size"] = comm_->world_size();
            j["images_per_sec_per_rank"] = win_rate / comm_->world_size();
            j["comm_s"] = comm_sum;  // rank 0's time waiting on gradient and loss all-reduces in this window
          }
          std::vector<std::pair<std::string, double>> scalars;
          if (window_good) {
            scalars = {{"train/loss", loss_sum / window_good}, {"train/grad_norm", gnorm_sum / window_good}};
            for (int k = 0; k < 4; ++k) {
              if (q_cnt[k] == 0) continue;
              const std::string name = "loss_q" + std::to_string(k);
              j[name] = q_sum[k] / q_cnt[k];
              scalars.emplace_back("train/" + name, q_sum[k] / q_cnt[k]);
            }
          }
          scalars.insert(scalars.end(), {{"train/lr", last.lr}, {"train/images_per_sec", win_rate},
                                         {"train/skipped", static_cast<double>(skipped_total)}});
          run_log->record(j);
          run_log->scalars(step_, scalars);
        }
        q_sum = {}, q_cnt = {};
        loss_sum = gnorm_sum = comm_sum = 0;
        window_steps = window_good = 0;
        t_window = now;
      }
    }
    const bool end = step_ == tc.steps;
    if (rank0 && ((tc.sample_every > 0 && step_ % tc.sample_every == 0) || end)) {
      auto grid = write_sample_grid(run_log->sample_grid_path(step_));  // [C,H',W']
      run_log->image("samples", step_, grid);
    }
    if (rank0 && evaluator && tc.eval_every > 0 && (step_ % tc.eval_every == 0 || end)) {
      if (hooks.tty) log("\n");
      const auto t_eval = clock::now();
      auto result = evaluator(generate_eval_samples());
      const double secs = std::chrono::duration<double>(clock::now() - t_eval).count();
      // One record per evaluation, next to the loss records: {"step", "fid", "kid", ..., "eval_seconds"}.
      nlohmann::json j = result;
      j["step"] = step_;
      j["eval_sampler"] = tc.eval_sampler;
      j["eval_steps"] = tc.eval_steps;
      j["eval_seconds"] = secs;
      run_log->record(j);
      std::ostringstream line;
      line << "step " << step_ << " | eval (" << tc.eval_samples << " samples, " << tc.eval_sampler << " "
           << tc.eval_steps << " steps, " << std::fixed << std::setprecision(0) << secs << " s):";
      std::vector<std::pair<std::string, double>> scalars;
      for (const char* k : {"fid", "kid", "precision", "recall"})
        if (result.contains(k)) {
          line << " " << k << " " << std::setprecision(4) << result[k].get<double>();
          scalars.emplace_back(std::string("eval/") + k, result[k].get<double>());
        }
      run_log->scalars(step_, scalars);
      if (result.contains("fid")) {
        const double fid = result["fid"].get<double>();
        if (run_log->beats_best(fid)) {
          SafeTensors st;
          add_module_state(st, *ema_, "ema.");
          st.metadata = checkpoint_metadata(cfg_, step_);
          st.metadata["fid"] = std::to_string(fid);
          st.metadata["eval"] = result.dump();
          line << " | new best, saved " << run_log->save_best(st);
        }
      }
      log(line.str() + "\n");
    }
    if ((tc.save_every > 0 && step_ % tc.save_every == 0) || end) save_checkpoint();
    if (last.stop && !end) {
      if (hooks.tty) log("\n");
      log("interrupted at step " + std::to_string(step_) + " (all " + std::to_string(comm_->world_size()) +
          " ranks); saving checkpoint\n");
      if (last_saved != step_) save_checkpoint();
      return false;
    }
  }
  if (hooks.tty) log("\n");
  if (multi) {  // the final step was saved, and its replicas compared, just above
    std::ostringstream cs;
    cs << std::hex << checksum;
    log("all " + std::to_string(comm_->world_size()) + " ranks hold identical weights (checksum " + cs.str() + ")\n");
  }
  log("done: " + std::to_string(step_) + " steps; checkpoint " + ckpt + "\n");
  return true;
}

}  // namespace ddpm
