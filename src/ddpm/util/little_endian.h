// little_endian.h — fixed-width integers to and from bytes: little-endian put/get of 1..8 bytes (the image cache, npz/zip,
// safetensors, TensorBoard records) and a big-endian 32-bit read (PNG chunks, IDX headers). Bytes only: no bounds checks (callers check
// first), no I/O, no file formats. Header-only, torch-free.
#pragma once

#include <cstdint>
#include <string>

namespace ddpm {

// Writes the low `bytes` bytes of v at p, least significant first.
inline void put_le(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}

// Appends the low `bytes` bytes of v to out, least significant first.
inline void append_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads `bytes` bytes at p, least significant first.
inline uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t get_le(const char* p, int bytes) { return get_le(reinterpret_cast<const unsigned char*>(p), bytes); }

// Reads 4 bytes at p, most significant first.
inline uint32_t get_be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline uint32_t get_be32(const char* p) { return get_be32(reinterpret_cast<const unsigned char*>(p)); }

}  // namespace ddpm
