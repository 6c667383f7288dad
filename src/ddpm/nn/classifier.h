// classifier.h — the small image classifier whose penultimate-layer features stand in for Inception-v3 on
// 28×28 grayscale data (Fashion-MNIST, MNIST), where ImageNet features mean little. FID/KID/precision/recall
// computed with it are comparable only with numbers from the same file (its id is in every eval report).
//
// Network: two stages of [conv3×3 → GroupNorm → SiLU] ×2 → max-pool 2, then flatten → Linear(feature_dim) → SiLU
// (the features) → dropout → Linear(num_classes). GroupNorm, not BatchNorm: an image's features never depend on
// the other images in its batch, in training mode or not (a known way FID code goes wrong).
// File: safetensors (safetensors.h) with __metadata__ format = "ddpm.cpp-classifier", config (JSON), and the
// measured test_accuracy. Not here: the metrics (metrics.h), the feature-network choice (features.h).
//
// Size legend: B batch, C channels, S image size, F feature_dim, K classes.
#pragma once

#include "ddpm/data/data.h"

#include <nlohmann/json.hpp>

#include "ddpm/nn/precision.h"
#include "ddpm/nn/weight_cast.h"

#include <torch/torch.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace ddpm {

constexpr const char* kClassifierFormat = "ddpm.cpp-classifier";

struct ClassifierConfig {
  int64_t channels = 1;
  int64_t image_size = 28;     // divisible by 4
  int64_t num_classes = 10;
  std::vector<int64_t> widths{32, 64};
  int64_t feature_dim = 256;
  double dropout = 0.3;
};
nlohmann::json to_json(const ClassifierConfig& c);
ClassifierConfig classifier_config_from_json(const nlohmann::json& j);  // throws on missing/unknown keys

struct ClassifierImpl : torch::nn::Module {
  explicit ClassifierImpl(const ClassifierConfig& cfg);
  // x in [-1, 1] [B,C,S,S] -> features [B,F] fp32 (after the SiLU that follows the feature layer). With
  // precision bf16 (inference only): convolutions and the feature layer in bf16, NHWC, GroupNorm+SiLU fused
  // with fp32 statistics.
  torch::Tensor features(const torch::Tensor& x);
  void set_precision(Precision p) { precision_ = p; }
  // [B,C,S,S] -> logits [B,K]
  torch::Tensor forward(const torch::Tensor& x);

  ClassifierConfig cfg;
  torch::nn::Sequential body{nullptr};
  torch::nn::Linear fc{nullptr}, out{nullptr};
  torch::nn::Dropout drop{nullptr};
  Precision precision_ = Precision::fp32;
  WeightCast cast_;
};
TORCH_MODULE(Classifier);

struct ClassifierTrainOptions {
  int64_t epochs = 6;
  int64_t batch_size = 128;
  double lr = 1e-3;           // Adam, cosine-decayed to 0 over the run
  double weight_decay = 0.0;
  bool flip = true;           // random horizontal flips
  uint64_t seed = 0;
  std::ostream* log = nullptr;
};

// Trains a classifier on `train` (labels required) and reports test accuracy on `test` after each epoch.
Classifier train_classifier(const Dataset& train, const Dataset& test, const ClassifierConfig& cfg,
                            const ClassifierTrainOptions& o, torch::Device device);

// Fraction of `d` classified correctly (eval mode, no gradients).
double classifier_accuracy(Classifier& net, const Dataset& d, torch::Device device, int64_t batch = 500);

// uint8 images [N,C,S,S] -> features [N,F] float32 on the CPU, in eval mode, `batch` images at a time. Throws
// naming `what` when the images' channels or size differ from the classifier's.
torch::Tensor classifier_features(Classifier& net, const torch::Tensor& images_u8, torch::Device device,
                                  const std::string& what, int64_t batch = 500);

// uint8 images [N,C,S,S] -> class probabilities softmax(logits) [N,K] float32 on the CPU (the Inception Score's
// p(y|x)), in eval mode, `batch` images at a time; checks as classifier_features.
torch::Tensor classifier_probs(Classifier& net, const torch::Tensor& images_u8, torch::Device device,
                               const std::string& what, int64_t batch = 500);

struct LoadedClassifier {
  Classifier net{nullptr};
  std::map<std::string, std::string> metadata;
};
void save_classifier(const std::string& path, Classifier& net, const std::map<std::string, std::string>& metadata);
// Throws naming the file when it is not a ddpm.cpp classifier or its tensors do not match its config.
LoadedClassifier load_classifier(const std::string& path, torch::Device device);

}  // namespace ddpm
