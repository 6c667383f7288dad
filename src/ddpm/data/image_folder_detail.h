// image_folder_detail.h — small helpers shared by the image-folder pieces (image_scan, image_decode,
// image_manifest, image_cache, image_folder): errno text and path joining. Internal: not part of the public API
// (image_folder.h), and not a general string library. Torch-free.
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace ddpm::image_folder_detail {

// strerror(errno), read at the call.
inline std::string errno_str() { return std::strerror(errno); }

// DIR/rel as the messages spell it.
inline std::string join(const std::string& dir, const std::string& rel) { return (std::filesystem::path(dir) / rel).string(); }

}  // namespace ddpm::image_folder_detail
