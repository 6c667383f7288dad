// safetensors.h — reader and writer for the public safetensors format (huggingface/safetensors):
//   8 bytes little-endian u64 N | N bytes JSON header | raw little-endian tensor data
// Header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
// with offsets relative to the start of the data section. No code is executed on load (unlike pickle).
// The reader validates everything before allocating (formats/safetensors_layout.h, torch-free and fuzzed): header
// length against the file size and a sane bound, JSON syntax, known dtypes, shape × dtype size == byte range,
// ranges inside the data, contiguous and non-overlapping, no duplicate names.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace ddpm {

struct SafeTensors {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;

  const torch::Tensor* find(const std::string& name) const;
};

// Serialises to bytes (tensors are made contiguous CPU copies). Names must be unique.
std::string safetensors_serialize(const SafeTensors& st);
// Parses bytes; `source` names the input in error messages.
SafeTensors safetensors_parse(const std::string& bytes, const std::string& source);

SafeTensors safetensors_load(const std::string& path);
// Crash-safe write: to PATH.tmp.<pid>, fsync the file, rename over PATH, fsync the directory. On any failure
// the temporary file is removed and an existing PATH is left untouched.
void safetensors_save(const std::string& path, const SafeTensors& st);

// Writes `bytes` to `path` atomically (temporary file + fsync + rename + directory fsync).
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace ddpm
