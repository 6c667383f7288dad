// image_set.cpp — see image_set.h.
#include "ddpm/data/image_set.h"

#include "ddpm/data/data.h"
#include "ddpm/io/formats/npz.h"
#include "ddpm/io/image_io.h"
#include "ddpm/io/safetensors.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace ddpm {
namespace fs = std::filesystem;

namespace {
bool is_image_file(const fs::path& p) {
  auto ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

torch::Tensor load_npz_images(const std::string& path) {
  const auto arrays = npz_parse(read_file_maybe_gz(path), path);
  auto it = arrays.find("arr_0");
  if (it == arrays.end()) throw std::runtime_error(path + ": no array 'arr_0' (expected uint8 [N, H, W, C])");
  const auto& a = it->second;
  if (a.dtype != "|u1" && a.dtype != "<u1")
    throw std::runtime_error(path + ": arr_0 has dtype " + a.dtype + ", expected uint8 (|u1)");
  if (a.shape.size() != 4 || (a.shape[3] != 1 && a.shape[3] != 3))
    throw std::runtime_error(path + ": arr_0 must be [N, H, W, C] with C = 1 or 3");
  auto t = torch::empty(a.shape, torch::kByte);  // [N,H,W,C]
  std::memcpy(t.data_ptr(), a.data.data(), a.data.size());
  return t.permute({0, 3, 1, 2}).contiguous();  // [N,C,H,W]
}

torch::Tensor load_folder(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && is_image_file(e.path()) && e.path().filename().string()[0] != '.') files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw std::runtime_error(dir + ": no image files (.png, .jpg, .bmp) in the folder");
  int w = 0, h = 0, comp = 0;
  if (!stbi_info(files[0].c_str(), &w, &h, &comp)) throw std::runtime_error(files[0].string() + ": not a readable image");
  const int channels = comp <= 2 ? 1 : 3;
  std::vector<torch::Tensor> images;
  images.reserve(files.size());
  for (const auto& f : files) {
    auto img = load_image(f.string(), channels);  // [C,H,W]
    if (img.size(1) != h || img.size(2) != w)
      throw std::runtime_error(f.string() + ": " + std::to_string(img.size(2)) + "×" + std::to_string(img.size(1)) +
                               " pixels, but " + files[0].string() + " is " + std::to_string(w) + "×" +
                               std::to_string(h) + " (a set must be one size)");
    images.push_back(img);
  }
  return torch::stack(images);  // [N,C,H,W]
}
}  // namespace

torch::Tensor load_image_set(const std::string& path) {
  if (fs::is_directory(path)) return load_folder(path);
  if (!fs::exists(path)) throw std::runtime_error(path + ": no such file or folder");
  return load_npz_images(path);
}

namespace {
// [N,C,H,W] uint8 -> the npy array [N,H,W,C] |u1.
NpyArray nhwc_array(const torch::Tensor& images_u8, const char* who) {
  if (images_u8.scalar_type() != torch::kByte || images_u8.dim() != 4)
    throw std::runtime_error(std::string(who) + ": expected uint8 [N,C,H,W]");
  auto nhwc = images_u8.to(torch::kCPU).permute({0, 2, 3, 1}).contiguous();  // [N,H,W,C]
  NpyArray a;
  a.dtype = "|u1";
  a.shape = nhwc.sizes().vec();
  a.data.assign(static_cast<const char*>(nhwc.data_ptr()), nhwc.nbytes());
  return a;
}
}  // namespace

void save_image_npz(const std::string& path, const torch::Tensor& images_u8, const torch::Tensor& labels) {
  std::vector<std::pair<std::string, NpyArray>> arrays = {{"arr_0", nhwc_array(images_u8, "save_image_npz")}};
  if (labels.defined()) {
    auto l = labels.to(torch::kLong).contiguous();
    NpyArray b;
    b.dtype = "<i8";
    b.shape = {l.size(0)};
    b.data.assign(static_cast<const char*>(l.data_ptr()), l.nbytes());
    arrays.emplace_back("arr_1", std::move(b));
  }
  write_file_atomic(path, npz_serialize(arrays, /*compress=*/false));
}

void save_image_arrays_npz(const std::string& path, const std::vector<torch::Tensor>& arrays_u8) {
  std::vector<std::pair<std::string, NpyArray>> arrays;
  for (size_t i = 0; i < arrays_u8.size(); ++i)
    arrays.emplace_back("arr_" + std::to_string(i), nhwc_array(arrays_u8[i], "save_image_arrays_npz"));
  write_file_atomic(path, npz_serialize(arrays, /*compress=*/false));
}

}  // namespace ddpm
