// image_manifest.h — the manifest of an image cache: the text that records the options and every scanned file
// (bytes, mtime, kept or skipped), its writer and parser, and the comparison with a fresh scan that decides
// whether a cache is stale. Text only: the cache file around it is image_cache.h, the scan image_scan.h.
// Internal to the image-folder reader; torch-free.
//
// UTF-8 text, lines of tab-separated fields (\t \n \r \\ escaped in paths and names), every line ends in '\n':
//   "ddpm image cache" 1
//   options size=S channels=C labels=0|1 allow_upscale=0|1
//   dir <DIR as given>                     (informational, not compared)
//   classes <K> <name>...
//   files <count>
//   kept|skipped <bytes> <mtime ns> <relative path>   (every scanned file, in scan order)
//
// A cache is reused only if the manifest matches a fresh scan (same files, byte sizes and mtimes in ns) and the
// options; otherwise compare_with_scan says why in words ("DIR/a.png changed (size 1234 -> 1300)"). A cache
// built with skip_bad that skipped files is not reused without skip_bad (the error comes back).
#pragma once

#include "ddpm/data/image_folder.h"
#include "ddpm/data/image_scan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::image_folder_detail {

struct Entry {
  bool kept = false;
  uint64_t bytes = 0;
  int64_t mtime = 0;
  std::string rel;
};

struct Manifest {
  int size = 0, channels = 0;
  bool labels = false, allow_upscale = false;
  std::string dir;
  std::vector<std::string> classes;
  std::vector<Entry> entries;
};

// The manifest as text (the bytes stored in the cache).
std::string manifest_text(const Manifest& m);

// Parses a manifest into a fresh `m`; returns "" or why it is corrupt.
std::string parse_manifest(const std::string& text, Manifest& m);

// Why a readable cache's manifest does not fit this scan of `dir` and these options; "" if it does.
std::string compare_with_scan(const Manifest& m, const Scan& s, const ImageFolderOptions& o, const std::string& dir);

}  // namespace ddpm::image_folder_detail
