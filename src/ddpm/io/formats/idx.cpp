// idx.cpp — see idx.h. No LibTorch.
#include "ddpm/io/formats/idx.h"

#include "ddpm/util/little_endian.h"
#include <zlib.h>

#include <stdexcept>

namespace ddpm {
namespace {

uint32_t be32(const char* buf, size_t off) { return get_be32(buf + off); }  // util/little_endian.h

}  // namespace

IdxImagesHeader parse_idx_images_header(const char* data, size_t size, const std::string& source) {
  if (size < 16)
    throw std::runtime_error(source + ": too short for an IDX image file (" + std::to_string(size) + " bytes)");
  if (be32(data, 0) != 0x00000803)
    throw std::runtime_error(source + ": wrong magic number for IDX images (expected 0x00000803)");
  IdxImagesHeader h{be32(data, 4), be32(data, 8), be32(data, 12)};
  if (h.h == 0 || h.w == 0 || h.h > kIdxMaxSide || h.w > kIdxMaxSide)
    throw std::runtime_error(source + ": implausible image size " + std::to_string(h.h) + "x" + std::to_string(h.w));
  const uint64_t need = 16 + h.n * h.h * h.w;  // n < 2^32, h·w <= 2^24: no overflow
  if (size != need)
    throw std::runtime_error(source + ": size mismatch: header says " + std::to_string(h.n) + " images of " +
                             std::to_string(h.h) + "x" + std::to_string(h.w) + " (" + std::to_string(need) +
                             " bytes) but the file has " + std::to_string(size) + " bytes");
  return h;
}

uint64_t parse_idx_labels_header(const char* data, size_t size, const std::string& source) {
  if (size < 8) throw std::runtime_error(source + ": too short for an IDX label file (" + std::to_string(size) + " bytes)");
  if (be32(data, 0) != 0x00000801)
    throw std::runtime_error(source + ": wrong magic number for IDX labels (expected 0x00000801)");
  const uint64_t n = be32(data, 4);
  if (size != 8 + n)
    throw std::runtime_error(source + ": size mismatch: header says " + std::to_string(n) +
                             " labels but the file has " + std::to_string(size - 8) + " label bytes");
  return n;
}

bool is_gzip(const std::string& data) {
  return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f && static_cast<unsigned char>(data[1]) == 0x8b;
}

std::string gunzip(const std::string& gz, const std::string& source, uint64_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw std::runtime_error(source + ": zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char chunk[1 << 16];
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof(chunk);
    ret = inflate(&zs, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) {
      const std::string why = zs.msg ? zs.msg : "inflate error";
      inflateEnd(&zs);
      throw std::runtime_error(source + ": corrupt gzip data (" + why + ")");
    }
    out.append(chunk, sizeof(chunk) - zs.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&zs);
      throw std::runtime_error(source + ": gzip data inflates past " + std::to_string(max_bytes) + " bytes");
    }
    if (ret == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw std::runtime_error(source + ": truncated gzip data");
    }
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace ddpm
