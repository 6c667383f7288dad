// classifier.cpp — see classifier.h.
#include "ddpm/nn/classifier.h"

#include "ddpm/nn/group_norm_silu.h"

#include "ddpm/io/checkpoint.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <set>
#include <stdexcept>

namespace ddpm {

nlohmann::json to_json(const ClassifierConfig& c) {
  return {{"channels", c.channels}, {"image_size", c.image_size}, {"num_classes", c.num_classes},
          {"widths", c.widths},     {"feature_dim", c.feature_dim}, {"dropout", c.dropout}};
}

ClassifierConfig classifier_config_from_json(const nlohmann::json& j) {
  static const std::set<std::string> keys = {"channels", "image_size", "num_classes", "widths", "feature_dim", "dropout"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!keys.count(it.key())) throw std::runtime_error("classifier config: unknown key '" + it.key() + "'");
  for (const auto& k : keys)
    if (!j.contains(k)) throw std::runtime_error("classifier config: missing key '" + k + "'");
  ClassifierConfig c;
  c.channels = j.at("channels").get<int64_t>();
  c.image_size = j.at("image_size").get<int64_t>();
  c.num_classes = j.at("num_classes").get<int64_t>();
  c.widths = j.at("widths").get<std::vector<int64_t>>();
  c.feature_dim = j.at("feature_dim").get<int64_t>();
  c.dropout = j.at("dropout").get<double>();
  const int64_t div = int64_t(1) << c.widths.size();
  if (c.channels < 1 || c.num_classes < 2 || c.widths.empty() || c.feature_dim < 1 || c.image_size < div ||
      c.image_size % div != 0)
    throw std::runtime_error("classifier config: impossible values " + j.dump());
  for (auto w : c.widths)
    if (w < 8 || w % 8 != 0) throw std::runtime_error("classifier config: widths must be multiples of 8");
  return c;
}

namespace {
constexpr int64_t kGroups = 8;
}

ClassifierImpl::ClassifierImpl(const ClassifierConfig& c) : cfg(c) {
  body = torch::nn::Sequential();
  int64_t in = c.channels, s = c.image_size;
  for (auto w : c.widths) {  // per stage: [B,in,s,s] -> [B,w,s/2,s/2]
    for (int rep = 0; rep < 2; ++rep) {
      body->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(rep == 0 ? in : w, w, 3).padding(1)));
      body->push_back(torch::nn::GroupNorm(kGroups, w));
      body->push_back(torch::nn::SiLU());
    }
    body->push_back(torch::nn::MaxPool2d(2));
    in = w;
    s /= 2;
  }
  body->push_back(torch::nn::Flatten());
  register_module("body", body);
  fc = register_module("fc", torch::nn::Linear(in * s * s, c.feature_dim));
  drop = register_module("drop", torch::nn::Dropout(c.dropout));
  out = register_module("out", torch::nn::Linear(c.feature_dim, c.num_classes));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  if (precision_ == Precision::fp32) return torch::silu(fc->forward(body->forward(x)));  // [B,C,S,S] -> [B,F]
  TORCH_CHECK(!torch::GradMode::is_enabled(), "classifier: bf16 features are for inference (no gradients)");
  const auto dt = compute_dtype(precision_);
  const bool cl = x.device().is_cpu();
  auto h = x.to(dt);                                                       // [B,C,S,S]
  const auto& mods = body->children();
  for (size_t i = 0; i < mods.size(); ++i) {
    auto* m = mods[i].get();
    if (m->as<torch::nn::Conv2dImpl>()) {
      h = cast_.conv(torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(mods[i])), h);
      if (cl) h = h.contiguous(at::MemoryFormat::ChannelsLast);  // a 1-channel input leaves oneDNN ambiguous
    } else if (auto* g = m->as<torch::nn::GroupNormImpl>()) {
      const bool silu = i + 1 < mods.size() && mods[i + 1]->as<torch::nn::SiLUImpl>() != nullptr;
      h = group_norm_silu(h, {}, g->weight, g->bias, g->options.num_groups(), g->options.eps(), silu);
      if (silu) ++i;
    } else if (m->as<torch::nn::MaxPool2dImpl>()) {
      h = torch::max_pool2d(h, {2, 2});
    } else if (m->as<torch::nn::FlattenImpl>()) {
      h = h.contiguous().flatten(1);  // NCHW order, as fc's weights expect
    } else if (m->as<torch::nn::SiLUImpl>()) {
      h = torch::silu(h);
    } else {
      throw std::logic_error("classifier: unexpected layer in the body");
    }
  }
  auto f = cast_.linear(h, fc->weight, fc->bias);                          // [B,F]
  return torch::silu(f.to(torch::kFloat32));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  return out->forward(drop->forward(features(x)));  // [B,K]
}

namespace {
void check_images(const ClassifierConfig& c, const torch::Tensor& u8, const std::string& what) {
  if (u8.dim() != 4 || u8.size(1) != c.channels || u8.size(2) != c.image_size || u8.size(3) != c.image_size) {
    std::ostringstream s;
    s << what << ": images are " << (u8.dim() == 4 ? std::to_string(u8.size(1)) + "×" + std::to_string(u8.size(2)) +
                                                          "×" + std::to_string(u8.size(3))
                                                    : "not a batch of images")
      << " (C×H×W) but the classifier takes " << c.channels << "×" << c.image_size << "×" << c.image_size;
    throw std::runtime_error(s.str());
  }
}
}  // namespace

double classifier_accuracy(Classifier& net, const Dataset& d, torch::Device device, int64_t batch) {
  if (!d.labels.defined()) throw std::runtime_error(d.name + ": has no labels to measure accuracy against");
  check_images(net->cfg, d.images, d.name);
  torch::NoGradGuard ng;
  net->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < d.size(); i += batch) {
    const int64_t n = std::min(batch, d.size() - i);
    auto x = to_model_range(d.images.narrow(0, i, n)).to(device);
    auto pred = net->forward(x).argmax(1).cpu();
    correct += pred.eq(d.labels.narrow(0, i, n)).sum().item<int64_t>();
  }
  return double(correct) / double(d.size());
}

torch::Tensor classifier_features(Classifier& net, const torch::Tensor& u8, torch::Device device,
                                  const std::string& what, int64_t batch) {
  check_images(net->cfg, u8, what);
  torch::NoGradGuard ng;
  net->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < u8.size(0); i += batch) {
    const int64_t n = std::min(batch, u8.size(0) - i);
    parts.push_back(net->features(to_model_range(u8.narrow(0, i, n)).to(device)).to(torch::kCPU, torch::kFloat));
  }
  if (parts.empty()) return torch::zeros({0, net->cfg.feature_dim});
  return torch::cat(parts);  // [N,F]
}

torch::Tensor classifier_probs(Classifier& net, const torch::Tensor& u8, torch::Device device,
                               const std::string& what, int64_t batch) {
  check_images(net->cfg, u8, what);
  torch::NoGradGuard ng;
  net->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < u8.size(0); i += batch) {
    const int64_t n = std::min(batch, u8.size(0) - i);
    auto logits = net->forward(to_model_range(u8.narrow(0, i, n)).to(device)).to(torch::kFloat);  // [n,K]
    parts.push_back(torch::softmax(logits, 1).to(torch::kCPU));
  }
  if (parts.empty()) return torch::zeros({0, net->cfg.num_classes});
  return torch::cat(parts);  // [N,K]
}

Classifier train_classifier(const Dataset& train, const Dataset& test, const ClassifierConfig& cfg,
                            const ClassifierTrainOptions& o, torch::Device device) {
  if (!train.labels.defined()) throw std::runtime_error(train.name + ": has no labels to train a classifier on");
  check_images(cfg, train.images, train.name);
  const int64_t maxlab = train.labels.max().item<int64_t>();
  if (train.labels.min().item<int64_t>() < 0 || maxlab >= cfg.num_classes)
    throw std::runtime_error(train.name + ": labels outside [0, " + std::to_string(cfg.num_classes - 1) + "]");
  torch::manual_seed(o.seed);
  Classifier net(cfg);
  net->to(device);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  auto gen = make_generator(o.seed);
  const int64_t N = train.size(), B = o.batch_size;
  const int64_t per_epoch = N / B, total = per_epoch * o.epochs;  // the last partial batch is dropped
  int64_t step = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t ep = 0; ep < o.epochs; ++ep) {
    net->train();
    auto perm = torch::randperm(N, gen);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t b = 0; b < per_epoch; ++b, ++step) {
      auto idx = perm.narrow(0, b * B, B);
      auto x = to_model_range(train.images.index_select(0, idx));  // [B,C,S,S]
      auto y = train.labels.index_select(0, idx);                  // [B]
      if (o.flip) {
        auto f = torch::rand({B}, gen) < 0.5;
        x = torch::where(f.view({B, 1, 1, 1}), x.flip({3}), x);
      }
      x = x.to(device);
      y = y.to(device);
      const double lr = o.lr * 0.5 * (1 + std::cos(M_PI * double(step) / double(total)));  // cosine to 0
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      opt.zero_grad();
      auto logits = net->forward(x);
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>();
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      if (o.log && (b + 1) % 100 == 0) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        *o.log << "epoch " << ep + 1 << "/" << o.epochs << " step " << b + 1 << "/" << per_epoch << " loss "
               << std::fixed << std::setprecision(4) << loss_sum / double(b + 1) << " | " << std::setprecision(0)
               << double(step + 1) * double(B) / el << " img/s" << std::endl;
      }
    }
    if (o.log) {
      const double acc = classifier_accuracy(net, test, device);
      *o.log << "epoch " << ep + 1 << " done: train loss " << std::fixed << std::setprecision(4)
             << loss_sum / double(per_epoch) << ", train acc " << double(correct) / double(per_epoch * B)
             << ", test acc " << acc << std::endl;
    }
  }
  net->eval();
  return net;
}

void save_classifier(const std::string& path, Classifier& net, const std::map<std::string, std::string>& metadata) {
  SafeTensors st;
  add_module_state(st, *net, "");
  st.metadata = metadata;
  st.metadata["format"] = kClassifierFormat;
  st.metadata["config"] = to_json(net->cfg).dump();
  check_finite(st, path);
  safetensors_save(path, st);
}

LoadedClassifier load_classifier(const std::string& path, torch::Device device) {
  auto st = safetensors_load(path);
  auto it = st.metadata.find("format");
  if (it == st.metadata.end() || it->second != kClassifierFormat)
    throw std::runtime_error(path + ": not a ddpm.cpp classifier (metadata format is not '" +
                             std::string(kClassifierFormat) + "')");
  auto c = st.metadata.find("config");
  if (c == st.metadata.end()) throw std::runtime_error(path + ": classifier without a config in its metadata");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(c->second);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": classifier config is not JSON");
  }
  ClassifierConfig cfg;
  try {
    cfg = classifier_config_from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  LoadedClassifier out;
  out.net = Classifier(cfg);
  load_module_state(*out.net, st, "", path);
  const size_t expected = out.net->named_parameters().size() + out.net->named_buffers().size();
  if (st.tensors.size() != expected)
    throw std::runtime_error(path + ": holds " + std::to_string(st.tensors.size()) + " tensors, the classifier of its config has " +
                             std::to_string(expected));
  out.net->to(device);
  out.net->eval();
  out.metadata = st.metadata;
  return out;
}

}  // namespace ddpm
