// image_check.cpp — see image_check.h: PNG/JPEG completeness checks over bytes, and check_image_complete
// (image_folder.h). No decoding, no I/O. No LibTorch.
#include "ddpm/data/image_check.h"

#include "ddpm/data/image_folder.h"
#include "ddpm/util/little_endian.h"

#include <zlib.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace ddpm {
namespace image_folder_detail {

void check_png(const unsigned char* b, size_t n, const std::string& src) {
  size_t pos = 8;
  for (bool first = true;; first = false) {
    if (n - pos < 12) throw std::runtime_error(src + ": truncated PNG (no IEND chunk)");
    const uint32_t len = get_be32(b + pos);
    const unsigned char* type = b + pos + 4;
    for (int i = 0; i < 4; ++i)
      if (!std::isalpha(type[i])) throw std::runtime_error(src + ": corrupt PNG (bad chunk type at byte " + std::to_string(pos) + ")");
    const std::string t(reinterpret_cast<const char*>(type), 4);
    if (len > 0x7fffffffu) throw std::runtime_error(src + ": corrupt PNG (chunk " + t + " claims " + std::to_string(len) + " bytes)");
    if (n - pos - 12 < len) throw std::runtime_error(src + ": truncated PNG (no IEND chunk; " + t + " runs past the end)");
    if (first && t != "IHDR") throw std::runtime_error(src + ": corrupt PNG (first chunk is " + t + ", not IHDR)");
    // The PNG CRC is zlib's CRC-32 over type and data; critical chunks only.
    if (!(type[0] & 0x20) && uint32_t(::crc32(0, type, uInt(4 + size_t(len)))) != get_be32(b + pos + 8 + len))
      throw std::runtime_error(src + ": corrupt PNG (CRC mismatch in " + t + " chunk)");
    if (t == "IEND") return;
    pos += 12 + size_t(len);
  }
}

void check_jpeg(const unsigned char* b, size_t n, const std::string& src) {
  const std::string trunc = src + ": truncated JPEG (no end-of-image marker)";
  size_t pos = 2;  // after SOI
  for (;;) {
    if (pos >= n) throw std::runtime_error(trunc);
    if (b[pos] != 0xFF) throw std::runtime_error(src + ": corrupt JPEG (no marker at byte " + std::to_string(pos) + ")");
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) throw std::runtime_error(trunc);
    const unsigned char m = b[pos++];
    if (m == 0xD9) return;                              // EOI
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // markers without a length
    if (m == 0x00 || m == 0xD8) throw std::runtime_error(src + ": corrupt JPEG (unexpected marker at byte " + std::to_string(pos - 1) + ")");
    if (n - pos < 2) throw std::runtime_error(trunc);
    const size_t len = (size_t(b[pos]) << 8) | b[pos + 1];
    if (len < 2) throw std::runtime_error(src + ": corrupt JPEG (segment length " + std::to_string(len) + ")");
    if (n - pos < len) throw std::runtime_error(trunc);
    pos += len;
    if (m != 0xDA) continue;
    // SOS: entropy-coded data runs to the next marker other than a stuffed 00, a restart marker or fill.
    for (;;) {
      const void* ff = pos < n ? std::memchr(b + pos, 0xFF, n - pos) : nullptr;
      if (!ff) throw std::runtime_error(trunc);
      pos = static_cast<size_t>(static_cast<const unsigned char*>(ff) - b);
      if (pos + 1 >= n) throw std::runtime_error(trunc);
      const unsigned char nx = b[pos + 1];
      if (nx == 0x00 || (nx >= 0xD0 && nx <= 0xD7)) pos += 2;
      else if (nx == 0xFF) pos += 1;
      else break;  // a real marker at pos
    }
  }
}

}  // namespace image_folder_detail

void check_image_complete(const unsigned char* b, size_t n, const std::string& source) {
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 8 && std::memcmp(b, png_sig, 8) == 0) return image_folder_detail::check_png(b, n, source);
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return image_folder_detail::check_jpeg(b, n, source);
  throw std::runtime_error(source + ": not a PNG or JPEG file (" + (n == 0 ? "empty" : "unknown signature") + ")");
}

}  // namespace ddpm
