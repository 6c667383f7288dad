// masks.h — the inpainting masks of `ddpm inpaint` and `ddpm edit --mask`: named shapes, and mask image files
// converted to the library's keep mask at the file boundary. Not here: what a method does with the mask
// (known_region.h, replace.h, repaint.h, ddnm.h's MaskOperator), the check that a mask fits a batch
// (check_keep_mask in known_region.h).
//
// Two conventions, one on each side of this file:
//   mask files  WHITE (value >= 128) = the region to fill / change, BLACK (< 128) = keep — the convention of
//               AUTOMATIC1111 and the other Stable Diffusion tools. Any channel count: gray is used as is,
//               RGB(A) becomes stb's luminance (alpha ignored).
//   keep mask   [1, 1, H, W] float32, 1 = known (kept), 0 = missing — what the library's methods take.
// Both refuse a mask that keeps every pixel or none.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace ddpm {

// The keep mask of a named shape for H×W images (missing = the part to fill):
//   center    the middle square of half the side (side ⌊H/2⌋ × ⌊W/2⌋, centred) is missing
//   left      the left half, columns 0 … ⌊W/2⌋ − 1, is missing
//   top       the top half, rows 0 … ⌊H/2⌋ − 1, is missing
//   lines     every other row is missing: rows 1, 3, 5, … (0-based; row 0 is kept) — horizontal lines
//   random:P  round(P·H·W) pixels, P in (0, 1), chosen uniformly without replacement from a generator seeded
//             by `seed` (the same seed gives the same mask), are missing
// Throws on an unknown name, P outside (0, 1) or not a number, or a mask that would keep all or nothing (e.g. a
// 1-pixel image). -> [1,1,H,W] float32 0/1
torch::Tensor mask_from_shape(const std::string& spec, int64_t height, int64_t width, uint64_t seed);

// A mask image [C,H,W] uint8 (any C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> keep mask [1,1,H,W] float32: 1 where
// the (luminance) value is < 128, 0 where it is >= 128. `what` names the input in errors (keeps all / none).
torch::Tensor keep_from_mask_image(const torch::Tensor& chw_u8, const std::string& what);

// Reads a mask PNG/JPEG (its structure checked complete first, so a truncated file is an error), converts it as
// keep_from_mask_image, and checks it is height×width. Throws naming `path` (and `flag`, e.g. "--mask").
torch::Tensor load_mask_file(const std::string& path, int64_t height, int64_t width, const std::string& flag);
// The same from the bytes of a mask image in memory (an upload); `what` names it in errors.
torch::Tensor mask_from_bytes(const std::string& bytes, int64_t height, int64_t width, const std::string& what);

// Throws "<what>: keeps every pixel (nothing to fill)" / "keeps no pixel" unless keep [1,1,H,W] has both.
void check_mask_has_both(const torch::Tensor& keep, const std::string& what);

// Fraction of missing pixels of a keep mask [1,1,H,W].
double missing_fraction(const torch::Tensor& keep);

}  // namespace ddpm
