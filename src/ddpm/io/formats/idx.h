// idx.h — the MNIST/Fashion-MNIST IDX format over bytes, without LibTorch (the fuzz target compiles it as is):
//   images: big-endian u32 magic 0x00000803, u32 N, u32 H, u32 W, then N·H·W uint8 pixels
//   labels: big-endian u32 magic 0x00000801, u32 N, then N uint8 labels
// plus transparent gunzip. Every check happens before anything proportional to the claimed sizes is allocated;
// errors read "<source>: <why>". The torch-facing readers are in data.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ddpm {

constexpr uint64_t kIdxMaxSide = 4096;                     // H, W bound ("implausible image size" above it)
constexpr uint64_t kMaxDecompressedBytes = 16ull << 30;     // a gzip stream inflating past 16 GiB is refused

struct IdxImagesHeader {
  uint64_t n = 0, h = 0, w = 0;  // pixels start at byte 16
};

// Validates a whole IDX image file (magic, 0 < H, W <= 4096, size == 16 + N·H·W exactly).
IdxImagesHeader parse_idx_images_header(const char* data, size_t size, const std::string& source);
// Validates a whole IDX label file (magic, size == 8 + N exactly); returns N. Labels start at byte 8.
uint64_t parse_idx_labels_header(const char* data, size_t size, const std::string& source);

// True if `data` starts with the gzip magic 1f 8b.
bool is_gzip(const std::string& data);
// Inflates a gzip stream; throws on corrupt or truncated data, or output beyond `max_bytes`.
std::string gunzip(const std::string& gz, const std::string& source, uint64_t max_bytes = kMaxDecompressedBytes);

}  // namespace ddpm
