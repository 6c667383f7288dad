// safetensors.cpp — see safetensors.h.
#include "ddpm/safetensors.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ddpm {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // 100 MB, the reference implementation's bound

struct DType {
  const char* name;
  torch::ScalarType type;
  size_t size;
};
const DType kDTypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2}, {"I8", torch::kInt8, 1}, {"U8", torch::kUInt8, 1}, {"BOOL", torch::kBool, 1},
};

const DType& dtype_of(torch::ScalarType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d;
  throw std::runtime_error(std::string("safetensors: unsupported tensor dtype ") + c10::toString(t));
}

const DType* dtype_named(const std::string& n) {
  for (const auto& d : kDTypes)
    if (n == d.name) return &d;
  return nullptr;
}

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw std::runtime_error(source + ": not a valid safetensors file: " + why);
}

std::string errno_str() { return std::strerror(errno); }

}  // namespace

const torch::Tensor* SafeTensors::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string safetensors_serialize(const SafeTensors& st) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> blobs;
  std::set<std::string> seen;
  uint64_t off = 0;
  for (const auto& [name, t] : st.tensors) {
    if (name == "__metadata__" || !seen.insert(name).second)
      throw std::runtime_error("safetensors: duplicate or reserved tensor name '" + name + "'");
    auto c = t.detach().to(torch::kCPU).contiguous();
    const auto& d = dtype_of(c.scalar_type());
    const uint64_t bytes = static_cast<uint64_t>(c.numel()) * d.size;
    header[name] = {{"dtype", d.name}, {"shape", c.sizes().vec()}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
    blobs.push_back(c);
  }
  if (!st.metadata.empty()) header["__metadata__"] = st.metadata;
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // align the data section to 8 bytes (spec allows padding)
  std::string out;
  out.reserve(8 + h.size() + off);
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += h;
  for (const auto& b : blobs) out.append(static_cast<const char*>(b.data_ptr()), b.numel() * b.element_size());
  return out;
}

SafeTensors safetensors_parse(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8) fail(source, "file is shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > kMaxHeader) fail(source, "header length " + std::to_string(n) + " exceeds the 100 MB bound");
  if (n > bytes.size() - 8) fail(source, "header length " + std::to_string(n) + " is larger than the file (truncated?)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const nlohmann::json::exception& e) {
    fail(source, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(source, "header is not a JSON object");
  const uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  SafeTensors st;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(source, "__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) fail(source, "__metadata__ value for '" + k + "' is not a string");
        st.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      fail(source, "tensor '" + name + "' lacks dtype, shape or data_offsets");
    if (!info["dtype"].is_string()) fail(source, "tensor '" + name + "' has a non-string dtype");
    const DType* d = dtype_named(info["dtype"].get<std::string>());
    if (!d) fail(source, "tensor '" + name + "' has unknown dtype '" + info["dtype"].get<std::string>() + "'");
    const auto& shape_j = info["shape"];
    const auto& offs = info["data_offsets"];
    if (!shape_j.is_array() || !offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned())
      fail(source, "tensor '" + name + "' has a malformed shape or data_offsets");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& s : shape_j) {
      if (!s.is_number_unsigned()) fail(source, "tensor '" + name + "' has a negative or non-integer dimension");
      const uint64_t v = s.get<uint64_t>();
      if (v != 0 && numel > (uint64_t(1) << 62) / v) fail(source, "tensor '" + name + "' has an absurd shape");
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    const uint64_t b = offs[0].get<uint64_t>(), e = offs[1].get<uint64_t>();
    if (b > e || e > data_size) fail(source, "tensor '" + name + "' data_offsets out of range (truncated file?)");
    if (e - b != numel * d->size)
      fail(source, "tensor '" + name + "' byte range " + std::to_string(e - b) + " does not match its shape and dtype (" +
                       std::to_string(numel * d->size) + " bytes)");
    ranges.push_back({b, e, name});
    auto t = torch::empty(shape, torch::TensorOptions().dtype(d->type));
    if (e > b) std::memcpy(t.data_ptr(), data + b, e - b);
    st.tensors.emplace_back(name, t);
  }
  // nlohmann::json objects are key-sorted and reject nothing on duplicates (last wins); catch duplicates by
  // counting the byte ranges against the data: they must tile [0, data_size) exactly.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t pos = 0;
  for (const auto& r : ranges) {
    if (r.begin != pos) fail(source, "tensor '" + r.name + "' overlaps another or leaves a gap in the data");
    pos = r.end;
  }
  if (pos != data_size) fail(source, "data section has " + std::to_string(data_size - pos) + " trailing bytes");
  // Restore file order (by offset) for a stable, readable listing.
  std::vector<std::pair<std::string, torch::Tensor>> ordered;
  for (const auto& r : ranges) ordered.emplace_back(r.name, *st.find(r.name));
  st.tensors = std::move(ordered);
  return st;
}

SafeTensors safetensors_load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return safetensors_parse(ss.str(), path);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot write (" + errno_str() + ")");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_str();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(path + ": write failed (" + why + "); the previous file is untouched");
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = errno_str();
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": flush failed (" + why + "); the previous file is untouched");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_str();
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": rename failed (" + why + ")");
  }
  auto dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void safetensors_save(const std::string& path, const SafeTensors& st) { write_file_atomic(path, safetensors_serialize(st)); }

}  // namespace ddpm
