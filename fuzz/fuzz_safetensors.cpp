// fuzz_safetensors.cpp — libFuzzer target: the safetensors byte validation (formats/safetensors_layout.h).
// Any input must either be rejected with std::runtime_error or yield ranges that lie inside the input.
#include "ddpm/io/formats/safetensors_layout.h"

#include <cstdlib>
#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto lay = ddpm::parse_safetensors_layout(reinterpret_cast<const char*>(data), size, "fuzz");
    unsigned sum = 0;
    for (const auto& e : lay.entries) {
      if (lay.data_offset + e.end > size) std::abort();  // the reader's promise
      for (uint64_t i = e.begin; i < e.end; ++i) sum += data[lay.data_offset + i];  // ASan checks every byte
    }
    (void)sum;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
