// safetensors_layout.cpp — see safetensors_layout.h. No LibTorch: compiled into the fuzz target as is.
#include "ddpm/io/formats/safetensors_layout.h"

#include "ddpm/util/little_endian.h"
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace ddpm {
namespace {

constexpr int kMaxDepth = 8;                      // a valid header nests 3 deep (root, entry, shape)
constexpr uint64_t kMaxDim = uint64_t(1) << 62;

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw std::runtime_error(source + ": not a valid safetensors file: " + why);
}

// Parses the header, rejecting duplicate keys in any object (nlohmann::json would keep the last silently) and
// absurd nesting, through the parser's callback, which sees every key before it is stored.
nlohmann::json parse_header(const char* first, const char* last, const std::string& source) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (depth > kMaxDepth) fail(source, "header nests deeper than " + std::to_string(kMaxDepth) + " levels");
    if (ev == E::object_start) keys.emplace_back();
    else if (ev == E::object_end && !keys.empty()) keys.pop_back();
    else if (ev == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
      fail(source, "duplicate name '" + parsed.get<std::string>() + "' in the header");
    return true;
  };
  try {
    return nlohmann::json::parse(first, last, cb);
  } catch (const nlohmann::json::exception& e) {
    fail(source, std::string("header is not valid JSON (") + e.what() + ")");
  }
}

}  // namespace

const std::vector<std::pair<std::string, size_t>>& safetensors_dtypes() {
  static const std::vector<std::pair<std::string, size_t>> d = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},
  };
  return d;
}

SafetensorsLayout parse_safetensors_layout(const char* bytes, size_t size, const std::string& source) {
  if (size < 8) fail(source, "file is shorter than the 8-byte header length");
  const uint64_t n = get_le(bytes, 8);
  if (n > kSafetensorsMaxHeader) fail(source, "header length " + std::to_string(n) + " exceeds the 100 MB bound");
  if (n > size - 8) fail(source, "header length " + std::to_string(n) + " is larger than the file (truncated?)");
  const nlohmann::json header = parse_header(bytes + 8, bytes + 8 + n, source);
  if (!header.is_object()) fail(source, "header is not a JSON object");

  SafetensorsLayout lay;
  lay.data_offset = 8 + n;
  const uint64_t data_size = size - lay.data_offset;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(source, "__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) fail(source, "__metadata__ value for '" + k + "' is not a string");
        lay.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      fail(source, "tensor '" + name + "' lacks dtype, shape or data_offsets");
    SafetensorsEntry e;
    e.name = name;
    const auto& dtype = info.at("dtype");
    if (!dtype.is_string()) fail(source, "tensor '" + name + "' has a non-string dtype");
    e.dtype = dtype.get<std::string>();
    for (const auto& [dn, ds] : safetensors_dtypes())
      if (dn == e.dtype) e.dtype_size = ds;
    if (e.dtype_size == 0) fail(source, "tensor '" + name + "' has unknown dtype '" + e.dtype + "'");
    const auto& shape = info.at("shape");
    const auto& offs = info.at("data_offsets");
    if (!shape.is_array()) fail(source, "tensor '" + name + "' has a shape that is not an array");
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      fail(source, "tensor '" + name + "' has data_offsets that are not two unsigned integers");
    uint64_t numel = 1;
    for (const auto& s : shape) {
      if (!s.is_number_unsigned()) fail(source, "tensor '" + name + "' has a negative or non-integer dimension");
      const uint64_t v = s.get<uint64_t>();
      if (v > kMaxDim || (v != 0 && numel > kMaxDim / v)) fail(source, "tensor '" + name + "' has an absurd shape");
      numel *= v;
      e.shape.push_back(static_cast<int64_t>(v));
    }
    e.begin = offs[0].get<uint64_t>();
    e.end = offs[1].get<uint64_t>();
    if (e.begin > e.end) fail(source, "tensor '" + name + "' has data_offsets [begin, end] with begin > end");
    if (e.end > data_size)
      fail(source, "tensor '" + name + "' data_offsets end " + std::to_string(e.end) + " is past the " +
                       std::to_string(data_size) + "-byte data section (truncated file?)");
    const uint64_t len = e.end - e.begin;  // <= data_size, so no overflow below
    if (len % e.dtype_size != 0 || len / e.dtype_size != numel)
      fail(source, "tensor '" + name + "' byte range of " + std::to_string(len) +
                       " bytes does not match its shape and dtype (" + std::to_string(numel) + " x " + e.dtype + ")");
    lay.entries.push_back(std::move(e));
  }
  // The ranges must tile [0, data_size): no overlap, no gap, no trailing bytes.
  std::sort(lay.entries.begin(), lay.entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (const auto& e : lay.entries) {
    if (e.begin < pos) fail(source, "tensor '" + e.name + "' overlaps another tensor's byte range");
    if (e.begin > pos) fail(source, "tensor '" + e.name + "' starts at byte " + std::to_string(e.begin) +
                                        ", leaving a gap after byte " + std::to_string(pos) + " (ranges must be contiguous)");
    pos = e.end;
  }
  if (pos != data_size) fail(source, "data section has " + std::to_string(data_size - pos) + " trailing bytes");
  return lay;
}

}  // namespace ddpm
