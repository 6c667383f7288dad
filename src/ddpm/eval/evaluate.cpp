// evaluate.cpp — see evaluate.h.
#include "ddpm/eval/evaluate.h"

#include "ddpm/data/data.h"
#include "ddpm/data/image_set.h"

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
    if (m != "fid" && m != "kid" && m != "pr" && m != "is")
      throw std::runtime_error("--metrics: unknown metric '" + m + "' (expected a list of fid, kid, pr, is)");
    out.insert(m);
  }
  if (out.empty()) throw std::runtime_error("--metrics: empty list (expected a list of fid, kid, pr, is)");
  return out;
}

bool metrics_need_reference(const std::set<std::string>& m) {
  return m.count("fid") || m.count("kid") || m.count("pr");
}

torch::Tensor load_reference_images(const std::string& spec, int64_t max) {
  const bool file_set = fs::is_directory(spec) || (spec.size() > 4 && spec.substr(spec.size() - 4) == ".npz");
  auto images = file_set ? load_image_set(spec) : load_dataset(spec).images;
  if (max > 0 && images.size(0) > max) images = images.narrow(0, 0, max);
  return images.contiguous();  // [N,C,H,W]
}

nlohmann::json evaluate_samples(const torch::Tensor& samples_u8, FeatureNetwork& net, const ReferenceStats& ref,
                                const EvalOptions& o) {
  nlohmann::json j;
  j["num_samples"] = samples_u8.size(0);
  j["features"] = net.id;
  if (o.metrics.count("is")) {
    const auto s = inception_score(net.probs(samples_u8, "samples"), o.is_splits);  // p(y|x) [M,K]
    j["is"] = s.mean;
    j["is_std"] = s.std;
    j["is_splits"] = s.splits;
  }
  if (!metrics_need_reference(o.metrics)) return j;
  auto feats = net.extract(samples_u8, "samples");  // [M,D]
  if (feats.size(1) != ref.features.size(1))
    throw std::runtime_error("samples give " + std::to_string(feats.size(1)) + " features, the reference " +
                             std::to_string(ref.features.size(1)));
  j["num_ref"] = ref.features.size(0);
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

std::function<nlohmann::json(const torch::Tensor&)> make_training_evaluator(
    const std::string& features_path, const std::string& ref_spec, const std::string& ref_cache, int64_t channels,
    int64_t image_size, torch::Device device, std::ostream* log) {
  auto net = std::make_shared<FeatureNetwork>(load_feature_network(features_path, device));
  torch::Tensor ref_images;
  try {
    ref_images = load_reference_images(ref_spec);  // [N,C,H,W] uint8
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("--eval-ref: ") + e.what());
  }
  if (ref_images.size(1) != channels || ref_images.size(2) != image_size || ref_images.size(3) != image_size)
    throw std::runtime_error("--eval-ref " + ref_spec + ": images are " + c10::str(ref_images.sizes().slice(1)) +
                             " (C,H,W), the model makes " + std::to_string(channels) + "×" +
                             std::to_string(image_size) + "×" + std::to_string(image_size));
  auto stats = std::make_shared<ReferenceStats>(reference_stats(ref_spec, ref_images, *net, ref_cache, log));
  return [net, stats](const torch::Tensor& samples) {
    EvalOptions eo;
    eo.metrics = {"fid", "kid"};
    return evaluate_samples(samples, *net, *stats, eo);
  };
}

}  // namespace ddpm
