// data.cpp — see data.h.
#include "ddpm/data.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;
namespace {

uint32_t be32(const std::string& buf, size_t off) {
  const auto* p = reinterpret_cast<const unsigned char*>(buf.data() + off);
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string gunzip(const std::string& gz, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw std::runtime_error(path + ": zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char chunk[1 << 16];
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof(chunk);
    ret = inflate(&zs, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) {
      inflateEnd(&zs);
      throw std::runtime_error(path + ": corrupt gzip data (" + (zs.msg ? zs.msg : "inflate error") + ")");
    }
    out.append(chunk, sizeof(chunk) - zs.avail_out);
    if (ret == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw std::runtime_error(path + ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

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
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f && static_cast<unsigned char>(data[1]) == 0x8b)
    return gunzip(data, path);
  return data;
}

torch::Tensor read_idx_images(const std::string& path) {
  const std::string buf = read_file_maybe_gz(path);
  if (buf.size() < 16) throw std::runtime_error(path + ": too short for an IDX image file (" + std::to_string(buf.size()) + " bytes)");
  const uint32_t magic = be32(buf, 0);
  if (magic != 0x00000803)
    throw std::runtime_error(path + ": wrong magic number for IDX images (expected 0x00000803)");
  const uint64_t n = be32(buf, 4), h = be32(buf, 8), w = be32(buf, 12);
  if (h == 0 || w == 0 || h > 4096 || w > 4096) throw std::runtime_error(path + ": implausible image size");
  const uint64_t need = 16 + n * h * w;
  if (buf.size() != need)
    throw std::runtime_error(path + ": size mismatch: header says " + std::to_string(n) + " images of " +
                             std::to_string(h) + "x" + std::to_string(w) + " (" + std::to_string(need) +
                             " bytes) but the file has " + std::to_string(buf.size()) + " bytes");
  auto t = torch::empty({int64_t(n), 1, int64_t(h), int64_t(w)}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), buf.data() + 16, n * h * w);
  return t;
}

torch::Tensor read_idx_labels(const std::string& path) {
  const std::string buf = read_file_maybe_gz(path);
  if (buf.size() < 8) throw std::runtime_error(path + ": too short for an IDX label file");
  if (be32(buf, 0) != 0x00000801) throw std::runtime_error(path + ": wrong magic number for IDX labels (expected 0x00000801)");
  const uint64_t n = be32(buf, 4);
  if (buf.size() != 8 + n)
    throw std::runtime_error(path + ": size mismatch: header says " + std::to_string(n) + " labels but the file has " +
                             std::to_string(buf.size() - 8) + " label bytes");
  auto t = torch::empty({int64_t(n)}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), buf.data() + 8, n);
  return t.to(torch::kLong);
}

Dataset load_dataset(const std::string& spec) {
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
  throw std::runtime_error("unknown dataset spec '" + spec + "' (expected fashion-mnist[:DIR][@split] or mnist:DIR[@split])");
}

torch::Tensor to_model_range(const torch::Tensor& u8) { return u8.to(torch::kFloat32).div(127.5).sub(1.0); }

torch::Tensor to_uint8(const torch::Tensor& x) {
  return x.detach().to(torch::kCPU, torch::kFloat32).add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8);
}

}  // namespace ddpm
