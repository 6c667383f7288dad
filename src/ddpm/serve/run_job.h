// run_job.h — runs one JobSpec on its model, exactly as the CLI verb with the same parameters would (the same
// library calls: samplers/generate.h for sample, restoration/verbs.h for the rest), and reports on it while it
// runs: progress after each model call, a preview of x̂_0 every `preview_every` calls, and cancellation between
// model calls. Not here: queueing (jobs.h) or HTTP (server.h).
#pragma once

#include "ddpm/serve/job.h"
#include "ddpm/serve/models.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace ddpm::serve {

// Thrown out of a running job when its cancellation was asked for.
struct JobCancelled {};

struct JobHooks {
  std::function<bool()> cancelled;  // polled before every model call
  std::function<void(int64_t step, int64_t steps, int64_t images_done, int64_t images)> progress;
  std::function<void(const std::string& png_b64, int64_t step, int64_t steps)> preview;
};

struct JobOutput {
  nlohmann::json result;  // images, grid, inputs, nfe, seconds, command, metrics
  int64_t images = 0;     // results made
  int64_t nfe = 0;        // model calls in all (per result × results; guidance counts once)
};

// Runs the job on the worker thread (the only user of model.net). Throws JobCancelled, or std::exception with
// a message for a job that fails.
JobOutput run_job(const JobSpec& spec, ServedModel& model, const DataSource* data, const JobHooks& hooks);

// The x̂_0 preview of a batch: up to 16 images of x̂_0 = (x − √(1−ᾱ) ε)/√ᾱ, clamped to [−1, 1], as a base64 PNG
// grid. x, eps [B,C,H,W].
std::string preview_png(const torch::Tensor& x, const torch::Tensor& eps, double alpha_bar);

}  // namespace ddpm::serve
