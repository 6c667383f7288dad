// checkpoint.h — ddpm checkpoints are single safetensors files (see safetensors.h), loadable by Python's
// `safetensors` library. Tensor naming:
//   model.<param>              training weights        (e.g. model.down.0.block.0.conv1.weight)
//   ema.<param>                EMA weights (what `ddpm sample` uses when present)
//   optim.exp_avg.<param>      Adam first moment
//   optim.exp_avg_sq.<param>   Adam second moment
// __metadata__: format = "ddpm.cpp", format_version = "1", step, optim_step, config (the full config as JSON).
// A weights-only file (models/*.safetensors, `ddpm export`) holds just ema.* and the metadata.
#pragma once

#include "ddpm/io/safetensors.h"
#include "ddpm/nn/backbone.h"
#include "ddpm/util/config.h"

#include <string>

namespace ddpm {

constexpr const char* kCheckpointFormat = "ddpm.cpp";
constexpr const char* kCheckpointVersion = "1";

struct Checkpoint {
  std::string path;
  Config config;
  int64_t step = 0;
  SafeTensors st;
  bool has(const std::string& prefix) const;  // any tensor starting with prefix
};

// Loads and checks a ddpm checkpoint: a valid safetensors file with our format metadata and a parseable config.
Checkpoint load_checkpoint(const std::string& path);

// Appends every parameter and buffer of `m` as prefix + name.
void add_module_state(SafeTensors& st, torch::nn::Module& m, const std::string& prefix);
// Copies prefix + name tensors into `m`; every parameter must be present with the right shape.
void load_module_state(torch::nn::Module& m, const SafeTensors& st, const std::string& prefix, const std::string& source);

// The network `ddpm sample` uses (the config's model.arch): EMA weights if the file has them, else the training
// weights; with raw = true the training weights (model.*; throws naming the file if it has none, as a
// weights-only export does); eval mode.
Backbone load_sampling_model(const Checkpoint& ck, torch::Device device, Precision precision = Precision::fp32,
                             bool raw = false);

// Throws "refusing to write PATH: tensor 'NAME' holds NaN or Inf values" if any floating tensor is non-finite
// (a checkpoint never stores a diverged state; the previous file stays).
void check_finite(const SafeTensors& st, const std::string& path);

// Metadata every checkpoint carries.
std::map<std::string, std::string> checkpoint_metadata(const Config& cfg, int64_t step);

}  // namespace ddpm
