// evaluate.cpp — see evaluate.h.
#include "ddpm/evaluate.h"

#include "ddpm/data.h"
#include "ddpm/image_set.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;

std::set<std::string> parse_metrics(const std::string& list) {
  std::set<std::string> out;
  std::stringstream ss(list);
  std::string m;
  while (std::getline(ss, m, ',')) {
    if (m != "fid" && m != "kid" && m != "pr")
      throw std::runtime_error("--metrics: unknown metric '" + m + "' (expected a list of fid, kid, pr)");
    out.insert(m);
  }
  if (out.empty()) throw std::runtime_error("--metrics: empty list (expected a list of fid, kid, pr)");
  return out;
}

torch::Tensor load_reference_images(const std::string& spec, int64_t max) {
  const bool file_set = fs::is_directory(spec) || (spec.size() > 4 && spec.substr(spec.size() - 4) == ".npz");
  auto images = file_set ? load_image_set(spec) : load_dataset(spec).images;
  if (max > 0 && images.size(0) > max) images = images.narrow(0, 0, max);
  return images.contiguous();  // [N,C,H,W]
}

nlohmann::json evaluate_samples(const torch::Tensor& samples_u8, FeatureNetwork& net, const ReferenceStats& ref,
                                const EvalOptions& o) {
  auto feats = net.extract(samples_u8, "samples");  // [M,D]
  if (feats.size(1) != ref.features.size(1))
    throw std::runtime_error("samples give " + std::to_string(feats.size(1)) + " features, the reference " +
                             std::to_string(ref.features.size(1)));
  nlohmann::json j;
  j["num_samples"] = samples_u8.size(0);
  j["num_ref"] = ref.features.size(0);
  j["features"] = net.id;
  if (o.metrics.count("fid")) j["fid"] = frechet_distance(feature_stats(feats), ref.stats);
  if (o.metrics.count("kid")) {
    auto k = kernel_inception_distance(feats, ref.features, o.kid_subsets, o.kid_subset_size, o.seed);
    j["kid"] = k.mean;
    j["kid_std"] = k.std;
    j["kid_subsets"] = k.subsets;
    j["kid_subset_size"] = k.subset_size;
  }
  if (o.metrics.count("pr")) {
    auto pr = precision_recall(ref.features, feats, o.pr_k);
    j["precision"] = pr.precision;
    j["recall"] = pr.recall;
    j["pr_k"] = pr.k;
  }
  return j;
}

}  // namespace ddpm
