// image_folder.h — `images:DIR` datasets: a folder of PNG/JPEG files, decoded once into a uint8 cache file that is
// memory-mapped afterwards. No LibTorch here (std + POSIX + stb): the torch-facing wrapper is the caller's.
//
// What load() does (the details live with each piece, in namespace ddpm::image_folder_detail):
//   scan    DIR recursively for *.png / *.jpg / *.jpeg (any case), hidden names skipped, ordered by relative path;
//           optional labels from the first-level folder names (image_scan.h).
//   decode  the format is taken from the content, and the file's structure is checked complete before stb_image
//           sees it (image_check.h); then decoded, converted to `channels`, centre-cropped to a square and resized
//           to size × size (image_decode.h). A shorter side below `size` is an error naming the file unless
//           allow_upscale.
//   cache   written through a temp file, fsynced and renamed over <cache>; on any error an existing cache is left
//           as it was (layout and checks: image_cache.h). A cache is reused only if it checks out and its manifest
//           matches a fresh scan (same files, byte sizes and mtimes in ns) and the options (image_manifest.h);
//           otherwise one log line says why ("cache X is stale: DIR/a.png changed (size 1234 -> 1300);
//           rebuilding") and it is rebuilt. A file at the cache path that is not a cache (bad magic) is never
//           overwritten; anything else there that fails the checks is replaced, so point it at a dedicated file.
//   no cache  with cache == "" the pixels are decoded into ordinary memory (N·C·S·S bytes of RAM) every time.
// The orchestration (threads, batches, progress lines) is image_folder.cpp.
//
// Errors are std::runtime_error with one-line messages naming the file and the problem.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace ddpm {

constexpr int kImageFolderMaxSide = 16384;  // decoded images above this per side are refused before decoding
constexpr uint32_t kImageCacheVersion = 1;

struct ImageFolderOptions {
  int size = 0;                 // output H = W (required, 1..16384)
  int channels = 3;             // 1 or 3
  bool labels = false;          // class labels from first-level folder names
  bool allow_upscale = false;   // otherwise a shorter side < size is an error naming the file
  bool skip_bad = false;        // unreadable/corrupt files are logged and skipped (a too-small image still stops it)
  std::string cache;            // cache file path; "" = no cache file, decode into memory each time
  int threads = 0;              // decoding threads; 0 = hardware threads, at most 8 (output order is unaffected)
  std::ostream* log = nullptr;  // progress, skipped files, cache rebuild reasons (one line each)
};

// The decoded dataset: N images [N, C, S, S] uint8 contiguous. Copies share the same (read-only) pixels.
class ImageFolder {
 public:
  static ImageFolder load(const std::string& dir, const ImageFolderOptions& o);

  int64_t size() const { return n_; }                // N
  int channels() const { return c_; }                // C
  int image_size() const { return s_; }              // S
  const uint8_t* pixels() const { return pixels_; }  // N·C·S·S bytes, NCHW; read-only memory when mapped
  const std::vector<int64_t>& labels() const { return labels_; }            // [N], empty unless o.labels
  const std::vector<std::string>& class_names() const { return classes_; }  // sorted, index = label
  const std::vector<std::string>& files() const { return files_; }          // [N] relative paths kept, in order
  bool from_cache() const { return from_cache_; }    // an existing valid cache was reused
  int64_t skipped() const { return skipped_; }       // files skipped under skip_bad
  // Owns the mapping (or buffer): keep a copy alive as long as anything (e.g. a tensor made with from_blob)
  // points into pixels(). Mapped pages are PROT_READ: never write through pixels().
  std::shared_ptr<void> keepalive() const { return hold_; }

 private:
  friend struct ImageFolderBuilder;
  std::shared_ptr<void> hold_;
  const uint8_t* pixels_ = nullptr;
  int64_t n_ = 0;
  int c_ = 0, s_ = 0;
  std::vector<int64_t> labels_;
  std::vector<std::string> classes_, files_;
  bool from_cache_ = false;
  int64_t skipped_ = 0;
};

// Checks that `bytes` hold a complete PNG or JPEG (the structure walk of image_check.h); throws "<source>: <why>".
// Exposed for tests and the fuzz target.
void check_image_complete(const unsigned char* bytes, size_t size, const std::string& source);

}  // namespace ddpm
