// features.cpp — see features.h.
#include "ddpm/eval/features.h"

#include "ddpm/io/safetensors.h"
#include "ddpm/nn/classifier.h"
#include "ddpm/nn/winograd_bf16.h"
#include "ddpm/util/hash.h"

#include <torch/script.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;

namespace {
std::string hex64(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string file_hash_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  uint64_t h = kFnv1a64Offset;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = fnv1a64(buf.data(), static_cast<size_t>(in.gcount()), h);
  }
  return hex64(h);
}

void check_u8_images(const torch::Tensor& u8, const std::string& what) {
  if (u8.scalar_type() != torch::kByte || u8.dim() != 4)
    throw std::runtime_error(what + ": expected uint8 images [N,C,H,W], got " + c10::str(u8.sizes()));
}
}  // namespace

std::string tensor_hash_hex(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  return hex64(fnv1a64(c.data_ptr(), c.nbytes()));
}

torch::Tensor inception_preprocess(const torch::Tensor& u8) {
  check_u8_images(u8, "inception input");
  auto x = u8.to(torch::kFloat);  // [N,C,H,W] in [0, 255]
  if (x.size(1) == 1) x = x.repeat({1, 3, 1, 1});
  if (x.size(1) != 3) throw std::runtime_error("inception input: images must have 1 or 3 channels, got " + std::to_string(x.size(1)));
  if (x.size(2) != 299 || x.size(3) != 299)
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{299, 299}).mode(torch::kBilinear).align_corners(false));
  return x;  // [N,3,299,299]
}

FeatureNetwork load_feature_network(const std::string& path, torch::Device device, int64_t batch,
                                    Precision precision) {
  if (!fs::is_regular_file(path)) throw std::runtime_error("--features '" + path + "': no such file");
  char magic[4] = {0, 0, 0, 0};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(magic, 4);
  }
  FeatureNetwork f;
  f.path = path;
  if (magic[0] == 'P' && magic[1] == 'K') {  // a zip archive: TorchScript
    f.kind = "torchscript";
    if (precision != Precision::fp32)
      throw std::runtime_error("--precision " + std::string(precision_name(precision)) + ": the TorchScript feature network '" +
                               path + "' runs in fp32 only (bf16 features: the classifier)");
    std::shared_ptr<torch::jit::Module> m;
    try {
      m = std::make_shared<torch::jit::Module>(torch::jit::load(path, device));
    } catch (const c10::Error& e) {
      throw std::runtime_error("--features '" + path + "': not a loadable TorchScript file (" +
                               std::string(e.what_without_backtrace()).substr(0, 200) + ")");
    }
    m->eval();
    f.extract = [m, device, batch, path](const torch::Tensor& u8, const std::string& what) {
      check_u8_images(u8, what);
      torch::NoGradGuard ng;
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < u8.size(0); i += batch) {
        auto x = inception_preprocess(u8.narrow(0, i, std::min(batch, u8.size(0) - i))).to(device);
        auto out = m->forward({x, true});  // return_features = True
        if (!out.isTensor()) throw std::runtime_error(path + ": forward(img, return_features=True) did not return a tensor");
        auto t = out.toTensor();
        if (t.dim() != 2 || t.size(0) != x.size(0))
          throw std::runtime_error(path + ": features of shape " + c10::str(t.sizes()) + ", expected [batch, D]");
        parts.push_back(t.to(torch::kCPU, torch::kFloat));
      }
      return parts.empty() ? torch::zeros({0, 0}) : torch::cat(parts);
    };
    f.probs = [m, device, batch, path](const torch::Tensor& u8, const std::string& what) {
      check_u8_images(u8, what);
      torch::NoGradGuard ng;
      std::vector<torch::Tensor> parts;
      for (int64_t i = 0; i < u8.size(0); i += batch) {
        auto x = inception_preprocess(u8.narrow(0, i, std::min(batch, u8.size(0) - i))).to(device);
        c10::IValue out;
        try {
          out = m->get_method("forward")({x}, {{"return_features", false}, {"no_output_bias", true}});
        } catch (const c10::Error& e) {
          throw std::runtime_error(path + ": forward(img, return_features=False, no_output_bias=True) failed (" +
                                   std::string(e.what_without_backtrace()).substr(0, 200) + ")");
        }
        if (!out.isTensor()) throw std::runtime_error(path + ": forward(img, return_features=False) did not return a tensor");
        auto t = out.toTensor();
        if (t.dim() != 2 || t.size(0) != x.size(0))
          throw std::runtime_error(path + ": class probabilities of shape " + c10::str(t.sizes()) + ", expected [batch, K]");
        parts.push_back(t.to(torch::kCPU, torch::kFloat));
      }
      return parts.empty() ? torch::zeros({0, 0}) : torch::cat(parts);
    };
  } else {
    f.kind = "classifier";
    auto loaded = std::make_shared<LoadedClassifier>(load_classifier(path, device));
    loaded->net->set_precision(precision);
    f.dim = loaded->net->cfg.feature_dim;
    f.extract = [loaded, device, batch](const torch::Tensor& u8, const std::string& what) {
      check_u8_images(u8, what);
      return classifier_features(loaded->net, u8, device, what, batch);
    };
    f.probs = [loaded, device, batch](const torch::Tensor& u8, const std::string& what) {
      check_u8_images(u8, what);
      return classifier_probs(loaded->net, u8, device, what, batch);
    };
  }
  // bf16 features through the Winograd convolutions (nn/winograd_bf16.h) differ from the direct kernels' at the
  // bf16 rounding level too: their own id, so a cache never mixes the two.
  f.id = f.kind + ":" + file_hash_hex(path) + (precision == Precision::fp32 ? "" : std::string(":") + precision_name(precision)) +
         (precision == Precision::bf16 && device.is_cpu() && winograd_bf16_available() ? "-winograd" : "");
  return f;
}

std::string reference_key(const std::string& spec, const torch::Tensor& u8, const FeatureNetwork& net) {
  return "ref=" + spec + "|n=" + std::to_string(u8.size(0)) + "|shape=" + c10::str(u8.sizes()) +
         "|pixels=" + tensor_hash_hex(u8) + "|features=" + net.id;
}

ReferenceStats reference_stats(const std::string& spec, const torch::Tensor& u8, FeatureNetwork& net,
                               const std::string& cache_path, std::ostream* log) {
  ReferenceStats r;
  r.key = reference_key(spec, u8, net);
  if (!cache_path.empty() && fs::exists(cache_path)) {
    std::string why;
    try {
      auto st = safetensors_load(cache_path);
      auto k = st.metadata.find("key");
      const auto *feat = st.find("features"), *mu = st.find("mu"), *sigma = st.find("sigma");
      if (k == st.metadata.end() || !feat || !mu || !sigma) {
        why = "is not a reference-statistics cache";
      } else if (k->second != r.key) {
        why = "was made for a different reference or feature network (" + k->second + ")";
      } else {
        r.features = *feat;
        r.stats.mu = *mu;
        r.stats.sigma = *sigma;
        r.stats.n = feat->size(0);
        r.from_cache = true;
        if (log) *log << "reference statistics from " << cache_path << "\n";
        return r;
      }
    } catch (const std::exception& e) {
      why = std::string("is unreadable (") + e.what() + ")";
    }
    if (log) *log << "reference cache " << cache_path << " " << why << ": rebuilding it\n";
  }
  if (log) *log << "computing " << net.kind << " features of " << u8.size(0) << " reference images (" << spec << ")\n";
  r.features = net.extract(u8, "--ref " + spec);
  r.stats = feature_stats(r.features);
  if (!cache_path.empty()) {
    SafeTensors st;
    st.tensors = {{"features", r.features}, {"mu", r.stats.mu}, {"sigma", r.stats.sigma}};
    st.metadata = {{"key", r.key}, {"format", "ddpm.cpp-reference-stats"}};
    const auto parent = fs::path(cache_path).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    safetensors_save(cache_path, st);
    if (log) *log << "reference statistics cached in " << cache_path << "\n";
  }
  return r;
}

}  // namespace ddpm
