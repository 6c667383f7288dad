// safetensors.cpp — see safetensors.h.
#include "ddpm/io/safetensors.h"
#include "ddpm/util/little_endian.h"

#include "ddpm/io/formats/safetensors_layout.h"

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
  append_le(out, h.size(), 8);
  out += h;
  for (const auto& b : blobs) out.append(static_cast<const char*>(b.data_ptr()), b.numel() * b.element_size());
  return out;
}

SafeTensors safetensors_parse(const std::string& bytes, const std::string& source) {
  // Every rule is checked on the bytes first (formats/safetensors_layout.h); only then are tensors allocated.
  const auto lay = parse_safetensors_layout(bytes.data(), bytes.size(), source);
  const char* data = bytes.data() + lay.data_offset;
  SafeTensors st;
  st.metadata = lay.metadata;
  for (const auto& e : lay.entries) {
    const DType* d = dtype_named(e.dtype);
    if (!d) fail(source, "tensor '" + e.name + "' has unsupported dtype '" + e.dtype + "'");
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(d->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    st.tensors.emplace_back(e.name, t);
  }
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
