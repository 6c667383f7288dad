// cmd_eval.cpp — `ddpm eval`: FID, KID and precision/recall of a set of images against a reference
// (evaluate.h), with the reference's statistics cached per reference and feature network, and the Inception
// Score of the set (no reference needed).
#include "commands.h"

#include "ddpm/eval/evaluate.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/util/hash.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

namespace ddpm::app {
namespace fs = std::filesystem;
namespace {
struct EvalArgs {
  std::string samples, ref, features, metrics = "fid,kid,pr", json, ref_cache, device = "auto";
  int64_t max_ref = 0, max_samples = 0, kid_subsets = 100, kid_subset_size = 1000, pr_k = 3, is_splits = 10, threads = 0, batch = 200;
  std::string precision = "fp32";
  bool force_precision = false;
  uint64_t seed = 0;
  bool no_ref_cache = false;
};
}  // namespace

std::string default_ref_cache(const std::string& ref, const std::string& features_path, int64_t max_ref) {
  const std::string what = ref + "|" + fs::absolute(features_path).string() + "|" + std::to_string(max_ref);
  char name[64];
  std::snprintf(name, sizeof name, "ref-%016llx.safetensors",
                static_cast<unsigned long long>(fnv1a64(what.data(), what.size())));
  return (fs::path(default_cache_dir()) / name).string();
}

Command add_eval(CLI::App& root) {
  auto a = std::make_shared<EvalArgs>();
  auto* c = root.add_subcommand("eval", "FID, KID and precision/recall of generated images against a reference set, "
                                        "and their Inception Score");
  c->option_defaults()->always_capture_default();
  c->add_option("--samples", a->samples,
                "Images to evaluate: a folder of PNG/JPEG files, an .npz (arr_0 uint8 [N,H,W,C]) or a dataset spec "
                "(real data, e.g. fashion-mnist@test)")
      ->required();
  c->add_option("--ref", a->ref, "Reference: a dataset spec (fashion-mnist@test, cifar10:DIR@test, ...), a folder or an .npz "
                                 "(required unless --metrics is only is)");
  c->add_option("--features", a->features,
                "Feature network: fmnist-classifier (the shipped 28×28 classifier), inception (the FID Inception-v3 "
                "TorchScript file), or a file; default: fmnist-classifier for 1×28×28 images, else inception");
  c->add_option("--metrics", a->metrics, "Comma-separated: fid, kid, pr, is (Inception Score: from the feature "
                                         "network's class probabilities, no reference)");
  c->add_option("--json", a->json, "Also write the result to this JSON file");
  c->add_option("--ref-cache", a->ref_cache, "Reference statistics cache file (default: one per reference and network in "
                                             "$DDPM_CACHE_DIR, $XDG_CACHE_HOME/ddpm or ~/.cache/ddpm)");
  c->add_flag("--no-ref-cache", a->no_ref_cache, "Compute the reference statistics afresh and write no cache");
  c->add_option("--max-ref", a->max_ref, "Use the first N reference images (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--max-samples", a->max_samples, "Use the first N samples (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--kid-subsets", a->kid_subsets, "KID: number of random subsets")->check(CLI::PositiveNumber);
  c->add_option("--kid-subset-size", a->kid_subset_size, "KID: samples per subset (capped by the set sizes)")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 40));
  c->add_option("--pr-k", a->pr_k, "Precision/recall: k of the k-nearest-neighbour radii")->check(CLI::PositiveNumber);
  c->add_option("--is-splits", a->is_splits, "Inception Score: splits of the samples (mean ± std over them)")
      ->check(CLI::PositiveNumber);
  c->add_option("--seed", a->seed, "Seed of KID's subset draws");
  c->add_option("--batch-size", a->batch, "Images per feature-network pass")->check(CLI::PositiveNumber);
  c->add_option("--device", a->device, "auto | cpu | cuda");
  c->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);
  add_precision_options(c, a->precision, a->force_precision);

  auto run = [=]() -> int {
    EvalOptions o;
    o.metrics = parse_metrics(a->metrics);
    o.kid_subsets = a->kid_subsets;
    o.kid_subset_size = a->kid_subset_size;
    o.pr_k = a->pr_k;
    o.is_splits = a->is_splits;
    const bool need_ref = metrics_need_reference(o.metrics);
    if (need_ref && a->ref.empty()) throw std::runtime_error("--ref is required for fid, kid and pr");
    o.seed = a->seed;
    if (!a->json.empty()) ensure_writable_parent(a->json, "--json");
    if (a->no_ref_cache && !a->ref_cache.empty()) throw std::runtime_error("--ref-cache and --no-ref-cache contradict each other");
    const auto device = resolve_device(a->device);
    set_threads(a->threads);
    const auto precision = parse_precision(a->precision);
    check_precision(precision, device, a->force_precision);
    const auto t0 = std::chrono::steady_clock::now();

    torch::Tensor samples;
    try {
      samples = load_reference_images(a->samples);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("--samples: ") + e.what());
    }
    if (a->max_samples > 0 && samples.size(0) > a->max_samples) samples = samples.narrow(0, 0, a->max_samples);
    if (o.metrics.count("is") && samples.size(0) < o.is_splits)
      throw std::runtime_error("--is-splits " + std::to_string(o.is_splits) + ": more splits than the " +
                               std::to_string(samples.size(0)) + " samples of " + a->samples);
    torch::Tensor ref_images;
    try {
      if (!a->ref.empty()) ref_images = load_reference_images(a->ref, a->max_ref);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("--ref: ") + e.what());
    }
    if (ref_images.defined() && samples.sizes().slice(1) != ref_images.sizes().slice(1))
      throw std::runtime_error("--samples " + a->samples + " are " + c10::str(samples.sizes().slice(1)) +
                               " (C,H,W) but --ref " + a->ref + " is " + c10::str(ref_images.sizes().slice(1)));
    const std::string features = resolve_features(
        a->features.empty() ? default_features_for(samples.size(1), samples.size(2), samples.size(3)) : a->features,
        "--features");
    auto net = load_feature_network(features, device, a->batch, precision);
    const std::string cache = a->no_ref_cache || !need_ref ? ""
                              : !a->ref_cache.empty()      ? a->ref_cache
                                                           : default_ref_cache(a->ref, features, a->max_ref);
    if (!cache.empty()) {
      const auto parent = fs::path(cache).parent_path();
      if (a->ref_cache.empty() && !parent.empty()) ensure_writable_dir(parent.string(), "reference cache directory");
      ensure_writable_parent(cache, "--ref-cache");
    }
    std::cerr << "evaluating " << samples.size(0) << " samples";
    if (need_ref) std::cerr << " against " << ref_images.size(0) << " images of " << a->ref;
    std::cerr << " with " << net.kind << " features (" << features << ")\n";
    ReferenceStats ref;
    if (need_ref) ref = reference_stats(a->ref, ref_images, net, cache, &std::cerr);
    auto j = evaluate_samples(samples, net, ref, o);
    j["samples"] = a->samples;
    j["ref"] = a->ref.empty() ? nlohmann::json(nullptr) : nlohmann::json(a->ref);
    j["features_file"] = features;
    j["ref_cache"] = cache.empty() ? nlohmann::json(nullptr) : nlohmann::json(cache);
    if (need_ref) j["ref_from_cache"] = ref.from_cache;
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a->json.empty()) write_file_atomic(a->json, j.dump(2) + "\n");
    std::cout << j.dump() << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
