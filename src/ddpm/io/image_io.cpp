// image_io.cpp — see image_io.h. stb comes from Debian's libstb (the implementations live in libstb.so).
#include "ddpm/io/image_io.h"

#include "ddpm/io/safetensors.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cstring>
#include <limits>
#include <stdexcept>

namespace ddpm {

torch::Tensor load_image(const std::string& path, int channels) {
  int w = 0, h = 0, c = 0;
  // Check the header before decoding, so that a file claiming a gigantic image allocates nothing.
  if (!stbi_info(path.c_str(), &w, &h, &c))
    throw std::runtime_error(path + ": cannot read image (" + stbi_failure_reason() + ")");
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide)
    throw std::runtime_error(path + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
                             " pixels is larger than the " + std::to_string(kMaxImageSide) + "-pixel side limit");
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, channels);
  if (!px) throw std::runtime_error(path + ": cannot read image (" + stbi_failure_reason() + ")");
  const int cc = channels ? channels : c;
  // clone, not contiguous(): for C = 1 the permuted view already counts as contiguous, and contiguous() would
  // return a view of the buffer freed below.
  auto t = torch::from_blob(px, {h, w, cc}, torch::kUInt8).permute({2, 0, 1}).clone(torch::MemoryFormat::Contiguous);  // [C,H,W]
  stbi_image_free(px);
  return t;
}

torch::Tensor decode_image(const std::string& bytes, const std::string& what, int channels) {
  const auto* b = reinterpret_cast<const stbi_uc*>(bytes.data());
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw std::runtime_error(what + ": too large");
  const int n = static_cast<int>(bytes.size());
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(b, n, &w, &h, &c))
    throw std::runtime_error(what + ": cannot read image (" + stbi_failure_reason() + ")");
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide)
    throw std::runtime_error(what + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
                             " pixels is larger than the " + std::to_string(kMaxImageSide) + "-pixel side limit");
  unsigned char* px = stbi_load_from_memory(b, n, &w, &h, &c, channels);
  if (!px) throw std::runtime_error(what + ": cannot read image (" + stbi_failure_reason() + ")");
  const int cc = channels ? channels : c;
  auto t = torch::from_blob(px, {h, w, cc}, torch::kUInt8).permute({2, 0, 1}).clone(torch::MemoryFormat::Contiguous);  // [C,H,W]
  stbi_image_free(px);
  return t;
}

namespace {
void append_bytes(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}
}  // namespace

std::string encode_png(const torch::Tensor& chw) {
  TORCH_CHECK(chw.dim() == 3 && (chw.size(0) == 1 || chw.size(0) == 3) && chw.scalar_type() == torch::kUInt8,
              "save_png expects [1|3, H, W] uint8, got ", chw.sizes(), " ", chw.scalar_type());
  auto hwc = chw.permute({1, 2, 0}).contiguous();  // [H,W,C]
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1)), c = static_cast<int>(hwc.size(2));
  std::string bytes;
  if (!stbi_write_png_to_func(append_bytes, &bytes, w, h, c, hwc.data_ptr<uint8_t>(), w * c))
    throw std::runtime_error("PNG encoding failed");
  return bytes;
}

void save_png(const std::string& path, const torch::Tensor& chw) {
  std::string bytes;
  try {
    bytes = encode_png(chw);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow, int64_t padding, int pad_value) {
  TORCH_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8, "make_grid expects [N,C,H,W] uint8");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  nrow = std::max<int64_t>(1, std::min(nrow, n));
  const int64_t rows = (n + nrow - 1) / nrow;
  auto grid = torch::full({c, rows * (h + padding) + padding, nrow * (w + padding) + padding}, pad_value, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / nrow, col = i % nrow;
    grid.narrow(1, padding + r * (h + padding), h).narrow(2, padding + col * (w + padding), w).copy_(images[i]);
  }
  return grid;  // [C, H', W']
}

torch::Tensor upscale(const torch::Tensor& chw, int64_t k) {
  if (k <= 1) return chw;
  return chw.repeat_interleave(k, 1).repeat_interleave(k, 2).contiguous();  // [C, kH, kW]
}

}  // namespace ddpm
