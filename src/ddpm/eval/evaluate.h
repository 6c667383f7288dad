// evaluate.h — "is the model any good?": the metrics of metrics.h for a set of generated images against a
// reference set, through a feature network (features.h). Shared by `ddpm eval` and the trainer's --eval-every.
// Not here: the math (metrics.h), the networks and caches (features.h), image files (image_set.h).
#pragma once

#include "ddpm/eval/features.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <ostream>
#include <set>
#include <string>

namespace ddpm {

struct EvalOptions {
  std::set<std::string> metrics{"fid", "kid", "pr"};  // any of fid, kid, pr, is
  int64_t kid_subsets = 100;
  int64_t kid_subset_size = 1000;
  int64_t pr_k = 3;
  int64_t is_splits = 10;  // Inception Score: splits of the samples (mean ± std over them)
  uint64_t seed = 0;  // KID's subset draws
};

// Parses "fid,kid,pr,is" (any subset, any order); throws naming an unknown metric.
std::set<std::string> parse_metrics(const std::string& list);
// Whether the metrics compare with a reference set (fid, kid, pr do; the Inception Score does not).
bool metrics_need_reference(const std::set<std::string>& metrics);

// The reference images of `spec`: a folder of images or an .npz (image_set.h), else a dataset spec (data.h).
// max > 0 keeps the first max images. -> [N,C,H,W] uint8
torch::Tensor load_reference_images(const std::string& spec, int64_t max = 0);

// Metrics of the samples [M,C,H,W] uint8 against the reference: {"fid": .., "kid": .., "kid_std": ..,
// "precision": .., "recall": .., "is": .., "is_std": .., "num_samples": M, "num_ref": N, "features": net.id}.
// `ref` is not read when the metrics need no reference (is alone; num_ref is then absent).
nlohmann::json evaluate_samples(const torch::Tensor& samples_u8, FeatureNetwork& net, const ReferenceStats& ref,
                                const EvalOptions& o);

// The trainer's --eval-every scorer (Trainer::evaluator): loads the feature network and the reference images,
// checks that the reference has the model's [C, size, size], computes (or reuses from `ref_cache`) the reference
// statistics, and returns a function giving {"fid", "kid", ...} of a set of samples. Errors about the
// reference name the flag --eval-ref.
std::function<nlohmann::json(const torch::Tensor&)> make_training_evaluator(
    const std::string& features_path, const std::string& ref_spec, const std::string& ref_cache, int64_t channels,
    int64_t image_size, torch::Device device, std::ostream* log);

}  // namespace ddpm
