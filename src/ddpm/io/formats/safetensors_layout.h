// safetensors_layout.h — validation of a safetensors file's bytes without LibTorch: the 8-byte header length,
// the JSON header and the byte ranges it claims. The torch-facing reader (safetensors.h) calls this first and
// only then allocates tensors; the fuzz target (fuzz/fuzz_safetensors.cpp) calls it directly.
//
// Rules (each rejected with "<source>: not a valid safetensors file: <why>"):
//   file shorter than 8 bytes; header length > 100 MB or > the rest of the file; header not valid UTF-8 JSON
//   or not an object; a duplicate key at any level (JSON parsers silently keep one of them); __metadata__ not an
//   object of strings; a tensor entry without dtype/shape/data_offsets; an unknown dtype; a negative,
//   non-integer or absurd dimension; data_offsets not two unsigned integers, reversed or past the end of the
//   data; a byte range whose length differs from shape × dtype size; ranges that overlap, leave a gap, or leave
//   trailing bytes (the ranges must tile the data section exactly).
// Not here: tensors (safetensors.h), ddpm's checkpoint conventions (checkpoint.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ddpm {

constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;  // 100 MB, the reference implementation's bound

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // one of safetensors_dtypes()
  size_t dtype_size = 0;        // bytes per element
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range, relative to the data section
};

struct SafetensorsLayout {
  uint64_t data_offset = 0;               // 8 + header length
  std::vector<SafetensorsEntry> entries;  // sorted by begin (file order)
  std::map<std::string, std::string> metadata;
};

// The dtype names this reader accepts, with their sizes in bytes (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL).
const std::vector<std::pair<std::string, size_t>>& safetensors_dtypes();

// Validates `size` bytes at `data` as a whole safetensors file; `source` names it in errors. Throws
// std::runtime_error. Allocates nothing proportional to the sizes the header claims.
SafetensorsLayout parse_safetensors_layout(const char* data, size_t size, const std::string& source);

}  // namespace ddpm
