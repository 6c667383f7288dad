// fuzz_idx.cpp — libFuzzer target: IDX image and label validation and gunzip (formats/idx.h).
// The first byte chooses images or labels; gzip input is inflated first (bounded, as the reader does).
#include "ddpm/io/formats/idx.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool labels = data[0] & 1;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (ddpm::is_gzip(bytes)) bytes = ddpm::gunzip(bytes, "fuzz", 64u << 20);
    unsigned sum = 0;
    if (labels) {
      const uint64_t n = ddpm::parse_idx_labels_header(bytes.data(), bytes.size(), "fuzz");
      if (8 + n != bytes.size()) std::abort();
      for (uint64_t i = 0; i < n; ++i) sum += static_cast<unsigned char>(bytes[8 + i]);
    } else {
      const auto h = ddpm::parse_idx_images_header(bytes.data(), bytes.size(), "fuzz");
      if (16 + h.n * h.h * h.w != bytes.size()) std::abort();
      for (uint64_t i = 0; i < h.n * h.h * h.w; ++i) sum += static_cast<unsigned char>(bytes[16 + i]);
    }
    (void)sum;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
