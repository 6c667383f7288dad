// job.h — one job of the server: the request of `POST /v1/jobs` parsed and checked against its model into a
// JobSpec (decoded images, the method's options, every default filled in), its equivalent `ddpm` command line,
// and the limits a server puts on requests. Not here: the queue and the job's state (jobs.h), running it
// (run_job.h), HTTP (server.h).
#pragma once

#include "ddpm/serve/models.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ddpm::serve {

// A request that cannot run: the message names the field (HTTP 400).
struct RequestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RequestLimits {
  int64_t max_num = 64;       // images (sample) or results per input (restoration)
  int64_t max_steps = 1000;   // sampler / method steps (also capped by the model's T)
  int64_t max_frames = 32;    // interpolate
};

// Ground-truth images a server offers by index (`--data`), for `data_index`.
struct DataSource {
  std::string spec;
  torch::Tensor images;  // [N,C,H,W] uint8
};

struct JobSpec {
  std::string model;   // id
  std::string task;    // sample | inpaint | upscale | denoise | edit | interpolate
  nlohmann::json request;  // the fields as given plus every default (what GET /v1/jobs/{id} shows)

  // common
  int64_t num = 1;
  uint64_t seed = 0;
  int64_t klass = -1;        // −1: none (the null class of a conditional model)
  bool class_all = false;    // sample: one row per class
  double guidance = 0;
  int64_t preview_every = 0; // model calls between previews (0: none)

  // sample
  std::string sampler = "ddpm";
  int64_t steps = 0;         // 0: the default of the sampler or method
  double eta = 0;
  std::string spacing, variance;  // "" = the default
  double rho = 7.0;
  bool rho_given = false;
  bool clip = true;

  // restoration
  torch::Tensor image;       // [C,H,W] uint8: the input (interpolate: --a); with data_index the ground truth
  torch::Tensor image_b;     // interpolate: --b
  int64_t data_index = -1;   // ≥ 0: `image` is image data_index of the server's --data
  torch::Tensor keep;        // [1,1,S,S] keep mask (inpaint; edit optional)
  std::string mask_desc;     // "center" | "upload" ...
  std::string method;
  int64_t jump_length = 0, resample = 0;
  int64_t factor = 0;
  double sigma = 0;          // denoise: the noise std of `image` ([0, 1] units); with data_index: the noise added
  double strength = 0;       // edit
  int64_t frames = 0;        // interpolate

  int64_t total_images() const;  // the results the job makes
};

// Parses and checks a request body (a JSON object) against the served models: unknown fields, wrong types,
// values out of range, fields that do not apply to the task, images that do not decode or do not fit the model.
// Throws RequestError naming the field.
JobSpec parse_job_request(const nlohmann::json& body, const std::vector<const ServedModel*>& models,
                          const DataSource* data, const RequestLimits& limits);

// The `ddpm` command line that makes the same images: `ddpm sample --checkpoint PATH --num 4 --seed 0 ...`.
// Uploaded images appear as input.png, image_b.png, mask.png (save them under those names to rerun it).
std::string command_line(const JobSpec& spec, const ServedModel& model, const DataSource* data);

}  // namespace ddpm::serve
