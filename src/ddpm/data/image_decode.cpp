// image_decode.cpp — see image_decode.h: read, check, decode, crop and resize one image file. No scan, no cache.
// No LibTorch. stb comes from Debian's libstb (the implementations live in libstb.so), as for image_io.cpp.
#include "ddpm/data/image_decode.h"

#include "ddpm/data/image_folder_detail.h"
#include "ddpm/data/image_scan.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

namespace ddpm::image_folder_detail {
namespace {

constexpr uint64_t kMaxFileBytes = 1ull << 30;  // larger image files are refused (stb takes an int length)

// A per-file problem. `skippable`: skip_bad may skip it (unreadable / corrupt), as opposed to a too-small image.
struct FileError : std::runtime_error {
  FileError(const std::string& m, bool s) : std::runtime_error(m), skippable(s) {}
  bool skippable;
};

std::string read_file(const std::string& path, Decoded& d) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(path + ": cannot open (" + errno_str() + ")", true);
  struct stat st {};
  const bool statted = ::fstat(fd, &st) == 0;
  if (!statted || !S_ISREG(st.st_mode)) {
    const std::string why = statted ? "not a regular file" : errno_str();
    ::close(fd);
    throw FileError(path + ": cannot read (" + why + ")", true);
  }
  d.bytes = static_cast<uint64_t>(st.st_size);
  d.mtime = mtime_ns(st);
  d.have_stat = true;
  if (d.bytes > kMaxFileBytes) {
    ::close(fd);
    throw FileError(path + ": file of " + std::to_string(d.bytes) + " bytes is too large for an image (limit 1 GiB)", true);
  }
  std::string buf(d.bytes, '\0');
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t r = ::read(fd, &buf[done], buf.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const std::string why = r < 0 ? errno_str() : "file shrank while reading";
      ::close(fd);
      throw FileError(path + ": read failed (" + why + ")", true);
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return buf;
}

void decode_into(const std::string& path, const ImageFolderOptions& o, Decoded& d) {
  const std::string data = read_file(path, d);
  const auto* b = reinterpret_cast<const unsigned char*>(data.data());
  try {
    check_image_complete(b, data.size(), path);
  } catch (const std::runtime_error& e) {
    throw FileError(e.what(), true);
  }
  int w = 0, h = 0, c = 0;
  const int len = static_cast<int>(data.size());
  if (!stbi_info_from_memory(b, len, &w, &h, &c))
    throw FileError(path + ": cannot read image (" + stbi_failure_reason() + ")", true);
  if (w <= 0 || h <= 0 || w > kImageFolderMaxSide || h > kImageFolderMaxSide)
    throw FileError(path + ": image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is larger than the " +
                        std::to_string(kImageFolderMaxSide) + "-pixel side limit", true);
  const int S = o.size, C = o.channels, m = std::min(w, h);
  if (m < S && !o.allow_upscale)
    throw FileError(path + ": image is " + std::to_string(w) + "x" + std::to_string(h) + ", its shorter side " +
                        std::to_string(m) + " is below the size " + std::to_string(S) + " (--allow-upscale enlarges it)", false);
  std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load_from_memory(b, len, &w, &h, &c, C), stbi_image_free);
  if (!px) throw FileError(path + ": cannot decode image (" + stbi_failure_reason() + ")", true);
  const size_t x0 = size_t(w - m) / 2, y0 = size_t(h - m) / 2;
  const unsigned char* crop = px.get() + (y0 * size_t(w) + x0) * C;  // [m, m, C] with row stride w·C
  std::vector<uint8_t> hwc(size_t(S) * S * C);                          // [S, S, C]
  if (m == S) {
    for (int y = 0; y < S; ++y) std::memcpy(&hwc[size_t(y) * S * C], crop + size_t(y) * w * C, size_t(S) * C);
  } else if (!stbir_resize_uint8_generic(crop, m, m, w * C, hwc.data(), S, S, 0, C, STBIR_ALPHA_CHANNEL_NONE, 0,
                                         STBIR_EDGE_CLAMP, m > S ? STBIR_FILTER_MITCHELL : STBIR_FILTER_CATMULLROM,
                                         STBIR_COLORSPACE_LINEAR, nullptr)) {
    throw std::bad_alloc();  // stbir fails only when it cannot allocate
  }
  d.chw.resize(hwc.size());  // [C, S, S]
  const size_t plane = size_t(S) * S;
  for (size_t i = 0; i < plane; ++i)
    for (int ch = 0; ch < C; ++ch) d.chw[ch * plane + i] = hwc[i * C + ch];
  d.ok = true;
}

}  // namespace

void decode_one(const std::string& path, const ImageFolderOptions& o, Decoded& d) {
  try {
    decode_into(path, o, d);
  } catch (const FileError& e) {
    d.error = e.what();
    d.skippable = e.skippable;
  } catch (...) {
    d.fatal = std::current_exception();
  }
}

}  // namespace ddpm::image_folder_detail
