// image_folder.h — `images:DIR` datasets: a folder of PNG/JPEG files, decoded once into a uint8 cache file that is
// memory-mapped afterwards. No LibTorch here (std + POSIX + stb): the torch-facing wrapper is the caller's.
//
// What load() does:
//   scan    DIR recursively for *.png / *.jpg / *.jpeg (any case); names starting with '.' (files and folders) are
//           ignored, and so are other extensions; symlinks to files are followed, symlinks to folders are not.
//           Files are ordered by relative path ('/'-separated, byte order), so the order is deterministic.
//   labels  optional: the class is the first path component (DIR/cat/sub/x.png -> "cat"); classes are the sorted
//           first-level folders holding at least one image file; index = label. An image directly in DIR is an error.
//   decode  the format is taken from the content (PNG or JPEG signature), not the extension. The structure is walked
//           before stb_image sees it: a PNG needs its IEND chunk and correct CRCs on critical chunks, a JPEG needs
//           its end-of-image marker after the last scan (stb would pad a cut JPEG with grey). Bytes after IEND / EOI
//           are ignored (the image itself is complete). Sides above 16384 px are refused before decoding.
//           Channels: gray -> RGB replicates, RGB -> gray is stb's luminance (77 R + 150 G + 29 B) / 256, alpha is
//           dropped (not composited), as PIL's convert("RGB") does.
//   resize  the centred square of side min(H, W) is cropped, then resized to size × size with stb_image_resize on
//           the stored (gamma-encoded) values, as PIL/torchvision do: Mitchell-Netravali (B = C = 1/3) when shrinking,
//           Catmull-Rom when enlarging, edges clamped. A square of exactly `size` is copied byte for byte. A shorter
//           side below `size` is an error naming the file unless allow_upscale.
//   cache   see the layout below. Written to "<cache>.tmp.<pid>" image by image (RAM holds one batch, not the
//           dataset), fsynced, then renamed over <cache>; on any error the temp file is removed and an existing cache
//           is left as it was. A cache is reused only if its header, sizes and manifest check out and the manifest
//           matches a fresh scan (same files, byte sizes and mtimes in ns) and the options; otherwise one log line
//           says why ("cache X is stale: DIR/a.png changed (size 1234 -> 1300); rebuilding") and it is rebuilt.
//           Pixel bytes themselves are not checksummed (that would read the whole file on every start).
//           A cache built with skip_bad that skipped files is not reused without skip_bad (the error comes back).
//           Whatever sits at the cache path and fails these checks is replaced, so point it at a dedicated file.
//   no cache  with cache == "" the pixels are decoded into ordinary memory (N·C·S·S bytes of RAM) every time.
//
// Cache file layout, version 1 (integers little-endian):
//   [0, 64)         prefix: "DDPMIMGC" | u32 version | u32 C | u64 N | u32 S | u32 flags (bit 0: labels) |
//                   u64 labels_offset | u64 manifest_offset | u64 manifest_bytes | u64 FNV-1a-64 of the manifest
//   [64, ...)       pixels: N·C·S·S uint8, NCHW (64-byte aligned in the mapping)
//   labels_offset   N int64 labels (only with flags bit 0; otherwise zero bytes)
//   manifest_offset manifest_bytes of UTF-8 text, lines of tab-separated fields (\t \n \\ escaped in paths):
//                     "ddpm image cache" 1
//                     options size=S channels=C labels=0|1 allow_upscale=0|1
//                     dir <DIR as given>                     (informational, not compared)
//                     classes <K> <name>...
//                     files <count>
//                     kept|skipped <bytes> <mtime ns> <relative path>   (every scanned file, in scan order)
//   the file ends exactly at manifest_offset + manifest_bytes.
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

// Checks that `bytes` hold a complete PNG or JPEG (structure walk as described above); throws "<source>: <why>".
// Exposed for tests and the fuzz target.
void check_image_complete(const unsigned char* bytes, size_t size, const std::string& source);

}  // namespace ddpm
