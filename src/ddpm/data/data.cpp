// data.cpp — see data.h.
#include "ddpm/data/data.h"

#include "ddpm/data/image_folder.h"

#include "ddpm/data/cifar10.h"
#include "ddpm/io/formats/idx.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;
namespace {

// "train-images-idx3-ubyte" in dir, with or without .gz.
std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const auto& cand : {dir + "/" + stem + ".gz", dir + "/" + stem})
    if (fs::exists(cand)) return cand;
  throw std::runtime_error(dir + ": missing " + stem + "[.gz]");
}

}  // namespace

std::string read_file_maybe_gz(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  return is_gzip(data) ? gunzip(data, path) : data;
}

// The byte-level checks live in formats/idx.h (torch-free, fuzzed); these only copy the validated bytes.
torch::Tensor read_idx_images(const std::string& path) {
  const std::string buf = read_file_maybe_gz(path);
  const auto h = parse_idx_images_header(buf.data(), buf.size(), path);
  auto t = torch::empty({int64_t(h.n), 1, int64_t(h.h), int64_t(h.w)}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), buf.data() + 16, h.n * h.h * h.w);
  return t;
}

torch::Tensor read_idx_labels(const std::string& path) {
  const std::string buf = read_file_maybe_gz(path);
  const uint64_t n = parse_idx_labels_header(buf.data(), buf.size(), path);
  auto t = torch::empty({int64_t(n)}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), buf.data() + 8, n);
  return t.to(torch::kLong);
}

namespace {
Dataset load_image_folder(const std::string& spec, const std::string& dir, const DatasetOptions& o) {
  if (dir.empty()) throw std::runtime_error("dataset '" + spec + "': images needs a directory (images:DIR)");
  if (o.image_size <= 0) throw std::runtime_error("dataset '" + spec + "': no image size given for the folder");
  ImageFolderOptions fo;
  fo.size = static_cast<int>(o.image_size);
  fo.channels = static_cast<int>(o.channels);
  fo.labels = o.labels;
  fo.allow_upscale = o.allow_upscale;
  fo.skip_bad = o.skip_bad;
  fo.cache = o.cache;
  fo.log = o.log;
  auto f = ImageFolder::load(dir, fo);
  Dataset d;
  d.name = spec;
  auto keep = f.keepalive();
  // The pixels stay in the (read-only, file-backed) mapping: no copy of the dataset in anonymous memory.
  d.images = torch::from_blob(const_cast<uint8_t*>(f.pixels()), {f.size(), f.channels(), f.image_size(), f.image_size()},
                              [keep](void*) mutable { keep.reset(); }, torch::kUInt8);  // [N,C,S,S]
  if (o.labels) {
    d.labels = torch::tensor(f.labels(), torch::kLong);  // [N]
    d.class_names = f.class_names();
  }
  return d;
}
}  // namespace

Dataset load_dataset(const std::string& spec, const DatasetOptions& o) {
  if (is_image_folder_spec(spec)) return load_image_folder(spec, spec.substr(7), o);
  if (spec == "images") throw std::runtime_error("dataset 'images': images needs a directory (images:DIR)");
  std::string body = spec, split = "train";
  if (auto at = body.rfind('@'); at != std::string::npos) {
    split = body.substr(at + 1);
    body = body.substr(0, at);
  }
  if (split != "train" && split != "test")
    throw std::runtime_error("dataset '" + spec + "': unknown split '" + split + "' (expected train or test)");
  std::string kind = body, dir;
  if (auto c = body.find(':'); c != std::string::npos) {
    kind = body.substr(0, c);
    dir = body.substr(c + 1);
  }
  if (kind == "fashion-mnist" || kind == "mnist") {
    if (dir.empty()) {
      if (kind == "mnist") throw std::runtime_error("dataset '" + spec + "': mnist needs a directory (mnist:DIR)");
      dir = kDefaultFashionMnistDir;
    }
    if (!fs::is_directory(dir)) throw std::runtime_error("dataset '" + spec + "': " + dir + " is not a directory");
    const std::string prefix = split == "train" ? "train" : "t10k";
    Dataset d;
    d.name = spec;
    d.images = read_idx_images(find_idx(dir, prefix + "-images-idx3-ubyte"));
    const auto lab = dir + "/" + prefix + "-labels-idx1-ubyte";
    if (fs::exists(lab + ".gz") || fs::exists(lab)) {
      d.labels = read_idx_labels(find_idx(dir, prefix + "-labels-idx1-ubyte"));
      if (d.labels.size(0) != d.images.size(0))
        throw std::runtime_error("dataset '" + spec + "': " + std::to_string(d.images.size(0)) + " images but " +
                                 std::to_string(d.labels.size(0)) + " labels");
    }
    if (d.size() == 0) throw std::runtime_error("dataset '" + spec + "': no images");
    return d;
  }
  if (kind == "cifar10") return load_cifar10(dir, split, spec);
  throw std::runtime_error("unknown dataset spec '" + spec +
                           "' (expected fashion-mnist[:DIR][@split], mnist:DIR[@split], cifar10:DIR[@split] or images:DIR)");
}

torch::Tensor to_model_range(const torch::Tensor& u8) { return u8.to(torch::kFloat32).div(127.5).sub(1.0); }

torch::Tensor to_uint8(const torch::Tensor& x) {
  return x.detach().to(torch::kCPU, torch::kFloat32).add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8);
}

}  // namespace ddpm
