// features.h — the feature networks behind FID/KID/precision/recall (metrics.h), and reference statistics
// cached on disk.
//
//   classifier   a ddpm.cpp classifier file (classifier.h): 28×28 grayscale data; penultimate-layer features.
//   torchscript  a TorchScript file with the FID Inception-v3's interface, i.e. `inception-2015-12-05.pt` of
//                StyleGAN2-ADA / clean-fid: forward(img, return_features=True) on float RGB in [0, 255] at
//                299×299 -> [B, 2048] pool features; forward(img, return_features=False, no_output_bias=True)
//                -> [B, 1008] softmax probabilities (the Inception Score's, as StyleGAN's IS metric calls it). Images are converted to RGB (gray repeated) and resized to
//                299×299 with bilinear interpolation (align_corners = false), as that file does internally when
//                given another size; the resize happens here so every image reaches the network at 299×299.
// Both run in eval mode under NoGradGuard, in fixed-size batches: an image's features do not depend on the
// batch it is in (GroupNorm in the classifier; the Inception file's BatchNorms use their running statistics).
//
// Reference statistics cache: one safetensors file with the reference's features [N,D] (KID and PR need them),
// μ [D] and Σ [D,D], and a key string in its metadata — the reference spec, its image count, an FNV-1a hash of
// its pixels and the feature network's id (a hash of the network file). A cache whose key differs from the
// current one is reported and rebuilt, never used.
// Size legend: N images, C channels, H×W size, D feature dimension.
#pragma once

#include "ddpm/eval/metrics.h"

#include "ddpm/nn/precision.h"

#include <torch/torch.h>

#include <functional>
#include <ostream>
#include <string>

namespace ddpm {

struct FeatureNetwork {
  std::string kind;  // "classifier" | "torchscript"
  std::string path;
  std::string id;    // kind + ":" + FNV-1a-64 of the file's bytes (hex): what caches are keyed by
  int64_t dim = 0;   // feature dimension (torchscript: known after the first batch)
  // uint8 images [N,C,H,W] -> features [N,D] float32 on the CPU. `what` names the images in errors.
  std::function<torch::Tensor(const torch::Tensor& images_u8, const std::string& what)> extract;
  // uint8 images [N,C,H,W] -> class probabilities [N,K] float32 on the CPU (the classifier's softmax; the
  // Inception file's 1008-way softmax): what the Inception Score needs.
  std::function<torch::Tensor(const torch::Tensor& images_u8, const std::string& what)> probs;
};

// Opens a classifier .safetensors or a TorchScript file (told apart by their first bytes). Throws naming the
// file when it is neither, or cannot be loaded.
// precision bf16: the classifier's feature pass in bf16 (classifier.h; features differ from fp32 ones at the
// bf16 rounding level, so the id — and every cache keyed by it — says ":bf16", or ":bf16-winograd" where the
// convolutions go through winograd_bf16.h); TorchScript files refuse it.
FeatureNetwork load_feature_network(const std::string& path, torch::Device device, int64_t batch = 200,
                                    Precision precision = Precision::fp32);

// The Inception input: [N,C,H,W] uint8, C = 1 or 3 -> [N,3,299,299] float32 in [0, 255].
torch::Tensor inception_preprocess(const torch::Tensor& images_u8);

// FNV-1a-64 of a tensor's bytes (contiguous CPU copy), as 16 hex digits.
std::string tensor_hash_hex(const torch::Tensor& t);

struct ReferenceStats {
  torch::Tensor features;  // [N,D] float32
  FeatureStats stats;
  std::string key;
  bool from_cache = false;
};

// The key of a reference set: spec, image count, pixel hash and network id.
std::string reference_key(const std::string& spec, const torch::Tensor& images_u8, const FeatureNetwork& net);
// Features and statistics of the reference images, from `cache_path` when it holds this exact key, else
// computed and written there atomically ("" = no cache). A cache that is unreadable or keyed differently is
// reported on `log` and replaced.
ReferenceStats reference_stats(const std::string& spec, const torch::Tensor& images_u8, FeatureNetwork& net,
                               const std::string& cache_path, std::ostream* log);

}  // namespace ddpm
