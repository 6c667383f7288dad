// image_io.h — PNG/JPEG in (stb_image), PNG out (stb_image_write), and sample grids. uint8 tensors [C,H,W].
#pragma once

#include <torch/torch.h>

#include <string>

namespace ddpm {

constexpr int kMaxImageSide = 16384;  // larger images are refused before decoding

// Reads a PNG/JPEG/BMP/... file (header checked first: at most kMaxImageSide per side); `channels` 0 keeps the file's own, 1 or 3 converts. -> [C,H,W] uint8
torch::Tensor load_image(const std::string& path, int channels = 0);
// The same from the bytes of a file in memory (an upload); `what` names it in errors. -> [C,H,W] uint8
torch::Tensor decode_image(const std::string& bytes, const std::string& what, int channels = 0);
// [C,H,W] uint8 (C = 1 or 3) -> the bytes of a PNG file.
std::string encode_png(const torch::Tensor& chw_u8);
// Writes [C,H,W] uint8 (C = 1 or 3) as PNG, atomically. Throws with the path on failure.
void save_png(const std::string& path, const torch::Tensor& chw_u8);
// Lays out [N,C,H,W] uint8 images in rows of `nrow`, `padding` pixels apart (value `pad_value`). -> [C,H',W']
torch::Tensor make_grid(const torch::Tensor& images, int64_t nrow, int64_t padding = 2, int pad_value = 255);
// Nearest-neighbour enlargement by an integer factor, for looking at 28×28 images. [C,H,W] -> [C,kH,kW]
torch::Tensor upscale(const torch::Tensor& chw_u8, int64_t factor);

}  // namespace ddpm
