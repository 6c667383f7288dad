// image_scan.h — the scan of an `images:DIR` folder: which files are images, their order, sizes, mtimes and class
// labels. Only the listing: it does not open or decode files (image_decode.h) nor compare with a cache
// (image_manifest.h). Internal to the image-folder reader (image_folder.h); torch-free (std + POSIX).
//
//   scan    DIR recursively for *.png / *.jpg / *.jpeg (any case); names starting with '.' (files and folders) are
//           ignored, and so are other extensions; symlinks to files are followed, symlinks to folders are not.
//           Files are ordered by relative path ('/'-separated, byte order), so the order is deterministic.
//   labels  optional: the class is the first path component (DIR/cat/sub/x.png -> "cat"); classes are the sorted
//           first-level folders holding at least one image file; index = label. An image directly in DIR is an error.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::image_folder_detail {

struct FileInfo {
  std::string rel;       // '/'-separated, relative to DIR
  uint64_t bytes = 0;    // as stat()ed; 0 when stat failed
  int64_t mtime = 0;     // ns
};

struct Scan {
  std::vector<FileInfo> files;        // sorted by rel
  std::vector<std::string> classes;   // sorted; empty without labels
  std::vector<int64_t> label;         // [files], empty without labels
};

// *.png / *.jpg / *.jpeg, any case.
bool has_image_ext(const std::string& name);

// The modification time of `st` in ns.
inline int64_t mtime_ns(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

// "seconds.nanoseconds" for messages.
std::string fmt_mtime(int64_t ns);

// Scans `dir` as described above; throws if it is missing, not a folder, holds no image file, or (with labels)
// holds an image outside a class sub-folder.
Scan scan_dir(const std::string& dir, bool labels);

}  // namespace ddpm::image_folder_detail
