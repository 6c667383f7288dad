// image_decode.h — one image file to [C, S, S] uint8 pixels: read it, check it is complete (image_check.h),
// decode with stb_image, convert channels, crop the centred square and resize. One file at a time: no scan,
// no threads, no cache (image_folder.cpp drives it). Internal to the image-folder reader; torch-free (std + POSIX
// + stb).
//
//   decode  Sides above 16384 px (kImageFolderMaxSide) are refused before decoding; files above 1 GiB are refused
//           before reading. Channels: gray -> RGB replicates, RGB -> gray is stb's luminance
//           (77 R + 150 G + 29 B) / 256, alpha is dropped (not composited), as PIL's convert("RGB") does.
//   resize  the centred square of side min(H, W) is cropped, then resized to size × size with stb_image_resize on
//           the stored (gamma-encoded) values, as PIL/torchvision do: Mitchell-Netravali (B = C = 1/3) when shrinking,
//           Catmull-Rom when enlarging, edges clamped. A square of exactly `size` is copied byte for byte. A shorter
//           side below `size` is an error naming the file unless allow_upscale.
#pragma once

#include "ddpm/data/image_folder.h"

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace ddpm::image_folder_detail {

// The outcome of decoding one file.
struct Decoded {
  bool ok = false;
  std::vector<uint8_t> chw;            // [C, S, S]
  uint64_t bytes = 0;                  // fstat of what was read
  int64_t mtime = 0;
  bool have_stat = false;
  std::string error;                   // "path: why"
  bool skippable = true;               // skip_bad may skip it (unreadable / corrupt), unlike a too-small image
  std::exception_ptr fatal;            // anything that is not a problem with the file (e.g. bad_alloc)
};

// Decodes `path` to o.size × o.size with o.channels into `d`; never throws: a problem with the file goes to
// d.error / d.skippable, anything else to d.fatal.
void decode_one(const std::string& path, const ImageFolderOptions& o, Decoded& d);

}  // namespace ddpm::image_folder_detail
