// models.h — the checkpoints a server serves: each loaded once (config, schedule, the sampling network on its
// device and precision), with what `GET /v1/models` reports. Not here: running jobs on them (run_job.h).
#pragma once

#include "ddpm/diffusion/schedule.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/nn/precision.h"
#include "ddpm/nn/backbone.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ddpm::serve {

struct ServedModel {
  std::string id;    // the file's stem ("fmnist-small"); made unique with -2, -3, ... when stems repeat
  std::string path;  // as given on the command line (the `ddpm` command lines of the results name it)
  Checkpoint ck;
  std::unique_ptr<Schedule> schedule;
  std::optional<Backbone> net;  // owned by the worker thread once serving
  torch::Device device = torch::kCPU;
  std::vector<std::string> class_names;  // classes.json next to the file, or Fashion-MNIST's names; else empty
  int64_t parameters = 0;

  int64_t channels() const { return ck.config.model.channels; }
  int64_t size() const { return ck.config.model.image_size; }
  int64_t classes() const { return ck.config.model.num_classes; }
  int64_t timesteps() const { return ck.config.diffusion.timesteps; }
  nlohmann::json describe() const;  // one entry of GET /v1/models
};

// Loads a checkpoint for serving: throws naming the file on anything wrong.
std::unique_ptr<ServedModel> load_served_model(const std::string& path, torch::Device device, Precision precision);

// Gives every model a distinct id (stem, stem-2, ...).
void assign_ids(std::vector<std::unique_ptr<ServedModel>>& models);

}  // namespace ddpm::serve
