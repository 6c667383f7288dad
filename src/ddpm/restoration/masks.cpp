// masks.cpp — see masks.h.
#include "ddpm/restoration/masks.h"

#include "ddpm/data/image_folder.h"
#include "ddpm/io/image_io.h"
#include "ddpm/util/runtime.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace ddpm {

namespace {
std::string size_str(int64_t h, int64_t w) { return std::to_string(w) + "x" + std::to_string(h); }
}  // namespace

void check_mask_has_both(const torch::Tensor& keep, const std::string& what) {
  const auto k = keep.to(torch::kCPU, torch::kFloat32);
  if (k.numel() == 0 || (k > 0.5).all().item<bool>())
    throw std::runtime_error(what + ": keeps every pixel (nothing to fill: white = the region to fill, black = keep)");
  if (!(k > 0.5).any().item<bool>())
    throw std::runtime_error(what + ": keeps no pixel (all of it is to be filled: white = the region to fill, "
                             "black = keep)");
}

double missing_fraction(const torch::Tensor& keep) {
  return 1.0 - keep.to(torch::kCPU, torch::kFloat64).mean().item<double>();
}

torch::Tensor mask_from_shape(const std::string& spec, int64_t height, int64_t width, uint64_t seed) {
  if (height < 1 || width < 1) throw std::runtime_error("mask shape '" + spec + "': empty image size");
  auto keep = torch::ones({1, 1, height, width}, torch::kFloat32);
  using torch::indexing::Slice;
  if (spec == "center") {
    const int64_t sh = height / 2, sw = width / 2, r0 = (height - sh) / 2, c0 = (width - sw) / 2;
    keep.index_put_({0, 0, Slice(r0, r0 + sh), Slice(c0, c0 + sw)}, 0.0);
  } else if (spec == "left") {
    keep.index_put_({0, 0, Slice(), Slice(0, width / 2)}, 0.0);
  } else if (spec == "top") {
    keep.index_put_({0, 0, Slice(0, height / 2), Slice()}, 0.0);
  } else if (spec == "lines") {
    keep.index_put_({0, 0, Slice(1, torch::indexing::None, 2), Slice()}, 0.0);
  } else if (spec.rfind("random:", 0) == 0) {
    const std::string p_str = spec.substr(7);
    double p = -1;
    try {
      size_t used = 0;
      p = std::stod(p_str, &used);
      if (used != p_str.size()) p = -1;
    } catch (const std::exception&) {
      p = -1;
    }
    if (!(p > 0.0 && p < 1.0))
      throw std::runtime_error("mask shape '" + spec + "': random:P needs a fraction P of missing pixels in (0, 1)");
    const int64_t n = height * width;
    const auto missing = static_cast<int64_t>(std::llround(p * static_cast<double>(n)));
    // A dedicated generator: the mask does not depend on how much other noise the run draws.
    constexpr uint64_t kStreamMask = 211;
    auto gen = make_generator(mix_seed(seed, 0, kStreamMask));
    auto perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong));  // [H·W]
    auto flat = keep.view({n});
    flat.index_put_({perm.slice(0, 0, missing)}, 0.0);
  } else {
    throw std::runtime_error("unknown mask shape '" + spec + "' (expected center, left, top, lines or random:P)");
  }
  check_mask_has_both(keep, "mask shape '" + spec + "' at " + size_str(height, width));
  return keep;
}

torch::Tensor keep_from_mask_image(const torch::Tensor& chw_u8, const std::string& what) {
  if (chw_u8.dim() != 3 || chw_u8.scalar_type() != torch::kUInt8 || chw_u8.size(0) < 1 || chw_u8.size(0) > 4)
    throw std::runtime_error(what + ": expected a [C,H,W] uint8 image with 1 to 4 channels");
  const int64_t C = chw_u8.size(0);
  torch::Tensor v;  // [H,W] int32 value the threshold is applied to
  if (C <= 2) {
    v = chw_u8[0].to(torch::kInt);  // gray (alpha ignored)
  } else {
    // stb_image's RGB -> gray: (77 R + 150 G + 29 B) >> 8 (what load_image(path, 1) would give)
    auto c = chw_u8.slice(0, 0, 3).to(torch::kInt);
    v = (c[0] * 77 + c[1] * 150 + c[2] * 29).div(256, "floor");
  }
  auto keep = (v < 128).to(torch::kFloat32).unsqueeze(0).unsqueeze(0);  // [1,1,H,W]: black = keep
  check_mask_has_both(keep, what);
  return keep;
}

torch::Tensor mask_from_bytes(const std::string& bytes, int64_t height, int64_t width, const std::string& what) {
  if (bytes.empty()) throw std::runtime_error(what + ": empty (no image bytes)");
  check_image_complete(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), what);
  auto img = decode_image(bytes, what);  // [C,H,W], the file's own channels
  if (img.size(1) != height || img.size(2) != width)
    throw std::runtime_error(what + ": the mask is " + size_str(img.size(1), img.size(2)) +
                             ", the model's images are " + size_str(height, width));
  return keep_from_mask_image(img, what);
}

torch::Tensor load_mask_file(const std::string& path, int64_t height, int64_t width, const std::string& flag) {
  const std::string what = flag + " '" + path + "'";
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(what + ": cannot open the file");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw std::runtime_error(what + ": read error");
  return mask_from_bytes(bytes, height, width, what);
}

}  // namespace ddpm
