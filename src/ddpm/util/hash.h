// hash.h — FNV-1a (64-bit) over bytes, incrementally: the checksum of caches, replicas and reference statistics.
// Not cryptographic: it detects change, not tampering. Header-only, torch-free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ddpm {

constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;

// Continues the hash `h` over n bytes at p (start with kFnv1a64Offset).
inline uint64_t fnv1a64(const void* p, size_t n, uint64_t h = kFnv1a64Offset) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace ddpm
