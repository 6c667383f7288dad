// image_cache.h — the cache file of an `images:DIR` dataset: its 64-byte header, reading and validating a mapped
// cache, and writing a new one through a temp file (fsync, then rename). The file only: the manifest text inside
// it is image_manifest.h, the decoding of the pixels image_decode.h, the decision to reuse or rebuild
// image_folder.cpp. Internal to the image-folder reader; torch-free (std + POSIX).
//
// Writing: to "<cache>.tmp.<pid>" image by image (RAM holds one batch, not the dataset), fsynced, then renamed
// over <cache>; on any error the temp file is removed and an existing cache is left as it was. Reading: a cache is
// used only if its header, sizes and manifest check out (and image_folder.cpp then compares the manifest with a
// fresh scan). Pixel bytes themselves are not checksummed (that would read the whole file on every start).
// Whatever sits at the cache path and fails these checks is replaced, so point it at a dedicated file — except a
// file without the magic, which is never overwritten (image_folder.cpp refuses).
//
// Cache file layout, version 1 (kImageCacheVersion; integers little-endian):
//   [0, 64)         prefix: "DDPMIMGC" | u32 version | u32 C | u64 N | u32 S | u32 flags (bit 0: labels) |
//                   u64 labels_offset | u64 manifest_offset | u64 manifest_bytes | u64 FNV-1a-64 of the manifest
//   [64, ...)       pixels: N·C·S·S uint8, NCHW (64-byte aligned in the mapping)
//   labels_offset   N int64 labels (only with flags bit 0; otherwise zero bytes)
//   manifest_offset manifest_bytes of UTF-8 text (image_manifest.h)
//   the file ends exactly at manifest_offset + manifest_bytes.
#pragma once

#include "ddpm/data/image_manifest.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ddpm::image_folder_detail {

constexpr size_t kPrefixBytes = 64;
// What open_cache says of a file that is not a cache at all.
constexpr const char* kNotACacheReason = "is not an image cache (bad magic)";

// A read-only mapping of a whole file; `hold` unmaps it.
struct Mapped {
  std::shared_ptr<void> hold;
  const unsigned char* base = nullptr;
  size_t len = 0;
};

struct Header {
  uint32_t version = 0, c = 0, s = 0, flags = 0;
  uint64_t n = 0, labels_off = 0, manifest_off = 0, manifest_len = 0, manifest_hash = 0;
};

// An opened, checked cache file.
struct CacheContents {
  Mapped map;
  Header h;
  Manifest m;
  std::vector<int64_t> labels;     // [N] when the header has labels, else empty
  const uint8_t* pixels = nullptr; // N·C·S·S bytes inside map
};

// Opens, maps and checks the cache at `path`; returns "" and fills `c` if it can be used, else why not, as words
// that follow the path ("does not exist", "is truncated (12 bytes)", kNotACacheReason, ...).
std::string open_cache(const std::string& path, CacheContents& c);

// Writes a new cache for `path` through "<path>.tmp.<pid>". Errors (std::runtime_error) name `path`, the file the
// user knows, not the temp file. Unless finish() succeeded, the temp file is closed and removed on destruction.
class CacheWriter {
 public:
  // Creates the parent folders and the temp file, and writes a placeholder prefix.
  explicit CacheWriter(const std::string& path);
  ~CacheWriter();
  CacheWriter(const CacheWriter&) = delete;
  CacheWriter& operator=(const CacheWriter&) = delete;

  // Appends pixel bytes (images in order, each [C, S, S]).
  void put(const void* p, size_t n);

  // Appends the labels (only with `labels`) and the manifest, writes the prefix, fsyncs, maps the file just
  // written and renames it over `path`; returns the mapping (pixels at base + kPrefixBytes).
  Mapped finish(uint32_t c, uint32_t s, uint64_t n, bool labels, const std::vector<int64_t>& label_values,
                const std::string& manifest);

  // Closes and removes the temp file (no-op once finished or abandoned).
  void abandon();

 private:
  void flush();
  void write_all(const char* p, size_t n);
  uint64_t offset() const { return written_ + buf_.size(); }

  std::string path_, tmp_, buf_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace ddpm::image_folder_detail
