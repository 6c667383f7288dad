// image_cache.cpp — see image_cache.h: the cache file's header, mapping, validation and atomic writing. No scan
// or decoding, no reuse decision. No LibTorch.
#include "ddpm/data/image_cache.h"

#include "ddpm/data/image_folder_detail.h"
#include "ddpm/util/hash.h"
#include "ddpm/util/little_endian.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace ddpm::image_folder_detail {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'D', 'D', 'P', 'M', 'I', 'M', 'G', 'C'};

Mapped map_fd(int fd, size_t len, const std::string& path) {
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap failed (" + errno_str() + ")");
  Mapped m;
  m.hold = std::shared_ptr<void>(p, [len](void* q) { ::munmap(q, len); });
  m.base = static_cast<const unsigned char*>(p);
  m.len = len;
  return m;
}

void encode_header(const Header& h, unsigned char* p) {  // [64]
  std::memset(p, 0, kPrefixBytes);
  std::memcpy(p, kMagic, 8);
  put_le(p + 8, h.version, 4);
  put_le(p + 12, h.c, 4);
  put_le(p + 16, h.n, 8);
  put_le(p + 24, h.s, 4);
  put_le(p + 28, h.flags, 4);
  put_le(p + 32, h.labels_off, 8);
  put_le(p + 40, h.manifest_off, 8);
  put_le(p + 48, h.manifest_len, 8);
  put_le(p + 56, h.manifest_hash, 8);
}

// Checks a mapped cache file and reads it into `m`, `labels`, `pixels`, `h`; returns "" or why it cannot be used.
std::string read_cache(const Mapped& map, Manifest& m, std::vector<int64_t>& labels,
                       const uint8_t*& pixels, Header& h) {
  if (map.len < kPrefixBytes) return "is truncated (" + std::to_string(map.len) + " bytes)";
  const unsigned char* p = map.base;
  if (std::memcmp(p, kMagic, 8) != 0) return kNotACacheReason;
  h.version = uint32_t(get_le(p + 8, 4));
  h.c = uint32_t(get_le(p + 12, 4));
  h.n = get_le(p + 16, 8);
  h.s = uint32_t(get_le(p + 24, 4));
  h.flags = uint32_t(get_le(p + 28, 4));
  h.labels_off = get_le(p + 32, 8);
  h.manifest_off = get_le(p + 40, 8);
  h.manifest_len = get_le(p + 48, 8);
  h.manifest_hash = get_le(p + 56, 8);
  if (h.version != kImageCacheVersion)
    return "has format version " + std::to_string(h.version) + " (this build writes " + std::to_string(kImageCacheVersion) + ")";
  if ((h.c != 1 && h.c != 3) || h.s == 0 || h.s > uint32_t(kImageFolderMaxSide) || h.n == 0 || h.n > (1ull << 40) || (h.flags & ~1u))
    return "has an implausible header (N " + std::to_string(h.n) + ", C " + std::to_string(h.c) + ", S " + std::to_string(h.s) + ")";
  const uint64_t pix = h.n * h.c * h.s * h.s;  // <= 2^40 · 3 · 2^28: fits
  const uint64_t lab = (h.flags & 1) ? h.n * 8 : 0;
  if (h.labels_off != kPrefixBytes + pix || h.manifest_off != h.labels_off + lab || h.manifest_len > (1ull << 40) ||
      map.len != h.manifest_off + h.manifest_len)
    return "is truncated or inconsistent (" + std::to_string(map.len) + " bytes; the header implies " +
           std::to_string(kPrefixBytes + pix + lab) + " + manifest)";
  const std::string text(reinterpret_cast<const char*>(p + h.manifest_off), h.manifest_len);
  if (fnv1a64(text.data(), text.size()) != h.manifest_hash) return "has a corrupt manifest (checksum mismatch)";
  const std::string why = parse_manifest(text, m);
  if (!why.empty()) return "has a corrupt manifest (" + why + ")";
  uint64_t kept = 0;
  for (const auto& e : m.entries) kept += e.kept;
  if (kept != h.n || uint32_t(m.channels) != h.c || uint32_t(m.size) != h.s || m.labels != bool(h.flags & 1) ||
      (m.labels && m.classes.empty()))
    return "has a manifest that disagrees with its header";
  labels.clear();
  if (m.labels) {
    labels.resize(h.n);
    for (uint64_t i = 0; i < h.n; ++i) {
      labels[i] = static_cast<int64_t>(get_le(p + h.labels_off + 8 * i, 8));
      if (labels[i] < 0 || labels[i] >= int64_t(m.classes.size())) return "has a label out of range";
    }
  }
  pixels = p + kPrefixBytes;
  return "";
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string open_cache(const std::string& path, CacheContents& c) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? "does not exist" : "cannot be opened (" + errno_str() + ")";
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return "is not a regular file";
  }
  if (st.st_size < off_t(kPrefixBytes)) {
    ::close(fd);
    return "is truncated (" + std::to_string(st.st_size) + " bytes)";
  }
  try {
    c.map = map_fd(fd, size_t(st.st_size), path);
  } catch (const std::runtime_error&) {
    ::close(fd);
    return "cannot be mapped";
  }
  ::close(fd);
  return read_cache(c.map, c.m, c.labels, c.pixels, c.h);
}

// ---- writing --------------------------------------------------------------------------------------------------

CacheWriter::CacheWriter(const std::string& path) : path_(path) {
  const fs::path parent = fs::path(path_).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(path_ + ": cannot write the image cache (" + errno_str() + ")");
  try {
    buf_.reserve(1 << 20);
    const unsigned char prefix[kPrefixBytes] = {};
    put(prefix, sizeof(prefix));  // placeholder, rewritten by finish()
  } catch (...) {
    abandon();
    throw;
  }
}

CacheWriter::~CacheWriter() { abandon(); }

void CacheWriter::abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
}

void CacheWriter::put(const void* p, size_t n) {
  const auto* c = static_cast<const char*>(p);
  if (buf_.size() + n > buf_.capacity()) flush();
  if (n >= buf_.capacity()) write_all(c, n);
  else buf_.append(c, n);
}

void CacheWriter::flush() {
  write_all(buf_.data(), buf_.size());
  buf_.clear();
}

void CacheWriter::write_all(const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw std::runtime_error(path_ + ": write failed (" + errno_str() + "); the previous cache is untouched");
    p += w;
    n -= static_cast<size_t>(w);
    written_ += static_cast<uint64_t>(w);
  }
}

Mapped CacheWriter::finish(uint32_t c, uint32_t s, uint64_t n, bool labels, const std::vector<int64_t>& label_values,
                           const std::string& manifest) {
  Header h;
  h.version = kImageCacheVersion;
  h.c = c;
  h.s = s;
  h.n = n;
  h.flags = labels ? 1 : 0;
  h.labels_off = offset();
  for (int64_t l : label_values) {
    unsigned char b[8];
    put_le(b, uint64_t(l), 8);
    put(b, 8);
  }
  h.manifest_off = offset();
  put(manifest.data(), manifest.size());
  flush();
  h.manifest_len = manifest.size();
  h.manifest_hash = fnv1a64(manifest.data(), manifest.size());
  unsigned char prefix[kPrefixBytes];
  encode_header(h, prefix);
  if (::pwrite(fd_, prefix, sizeof(prefix), 0) != ssize_t(sizeof(prefix)))
    throw std::runtime_error(path_ + ": write failed (" + errno_str() + "); the previous cache is untouched");
  if (::fsync(fd_) != 0) throw std::runtime_error(path_ + ": flush failed (" + errno_str() + "); the previous cache is untouched");
  // Map the inode just written (not whatever the path names later), then publish it.
  Mapped map = map_fd(fd_, size_t(h.manifest_off + h.manifest_len), path_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw std::runtime_error(path_ + ": rename failed (" + errno_str() + "); the previous cache is untouched");
  ::close(fd_);
  fd_ = -1;
  fsync_dir(fs::path(path_).parent_path());
  return map;
}

}  // namespace ddpm::image_folder_detail
