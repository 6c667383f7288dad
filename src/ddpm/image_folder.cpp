// image_folder.cpp — see image_folder.h. No LibTorch. stb comes from Debian's libstb (the implementations live in
// libstb.so), as for image_io.cpp.
#include "ddpm/image_folder.h"

#include "ddpm/hash.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <new>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace ddpm {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'D', 'D', 'P', 'M', 'I', 'M', 'G', 'C'};
constexpr size_t kPrefixBytes = 64;
constexpr uint64_t kMaxFileBytes = 1ull << 30;  // larger image files are refused (stb takes an int length)
constexpr const char* kManifestTitle = "ddpm image cache";

std::string errno_str() { return std::strerror(errno); }

void say(const ImageFolderOptions& o, const std::string& line) {
  if (o.log) *o.log << line << std::endl;
}

// A per-file problem. `skippable`: skip_bad may skip it (unreadable / corrupt), as opposed to a too-small image.
struct FileError : std::runtime_error {
  FileError(const std::string& m, bool s) : std::runtime_error(m), skippable(s) {}
  bool skippable;
};

// ---- little helpers -------------------------------------------------------------------------------------------

uint32_t be32(const unsigned char* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

void put_le(unsigned char* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t crc32(const unsigned char* p, size_t n) {  // the PNG/zlib CRC
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '\t') out += "\\t";
    else if (ch == '\n') out += "\\n";
    else if (ch == '\r') out += "\\r";
    else out += ch;
  }
  return out;
}
bool unescape(const std::string& s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return false;
    const char c = s[i];
    if (c == '\\') out += '\\';
    else if (c == 't') out += '\t';
    else if (c == 'n') out += '\n';
    else if (c == 'r') out += '\r';
    else return false;
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

bool parse_u64(const std::string& s, uint64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_image_ext(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string ext = lower(name.substr(dot));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

int64_t mtime_ns(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

std::string fmt_mtime(int64_t ns) {
  char buf[48];
  const int64_t s = ns / 1000000000, f = ns % 1000000000;
  std::snprintf(buf, sizeof(buf), "%lld.%09lld", static_cast<long long>(s), static_cast<long long>(f < 0 ? -f : f));
  return buf;
}

// ---- the scan -------------------------------------------------------------------------------------------------

struct FileInfo {
  std::string rel;       // '/'-separated, relative to DIR
  uint64_t bytes = 0;    // as stat()ed; 0 when stat failed
  int64_t mtime = 0;     // ns
};

struct Scan {
  std::vector<FileInfo> files;        // sorted by rel
  std::vector<std::string> classes;   // sorted; empty without labels
  std::vector<int64_t> label;         // [files], empty without labels
};

void walk(const fs::path& abs, const std::string& rel, std::vector<FileInfo>& out) {
  std::error_code ec;
  fs::directory_iterator it(abs, ec), end;
  if (ec) throw std::runtime_error(abs.string() + ": cannot list folder (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(abs.string() + ": cannot list folder (" + ec.message() + ")");
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden
    const std::string r = rel.empty() ? name : rel + "/" + name;
    std::error_code sec;
    if (fs::is_directory(it->symlink_status(sec))) {
      walk(it->path(), r, out);
      continue;
    }
    if (fs::is_symlink(it->symlink_status(sec)) && fs::is_directory(it->status(sec))) continue;  // not followed
    if (!has_image_ext(name)) continue;
    FileInfo f;
    f.rel = r;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) == 0) {
      f.bytes = static_cast<uint64_t>(st.st_size);
      f.mtime = mtime_ns(st);
    }
    out.push_back(std::move(f));
  }
}

std::string join(const std::string& dir, const std::string& rel) { return (fs::path(dir) / rel).string(); }

Scan scan_dir(const std::string& dir, bool labels) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (!fs::exists(st)) throw std::runtime_error(dir + ": no such folder");
  if (!fs::is_directory(st)) throw std::runtime_error(dir + ": not a folder");
  Scan s;
  walk(dir, "", s.files);
  std::sort(s.files.begin(), s.files.end(), [](const FileInfo& a, const FileInfo& b) { return a.rel < b.rel; });
  if (s.files.empty()) throw std::runtime_error(dir + ": no PNG or JPEG files found (searched recursively)");
  if (!labels) return s;
  std::vector<std::string> cls;
  for (const auto& f : s.files) {
    const auto slash = f.rel.find('/');
    if (slash == std::string::npos)
      throw std::runtime_error(join(dir, f.rel) + ": not in a class sub-folder (labels come from the first-level folder names)");
    cls.push_back(f.rel.substr(0, slash));
  }
  s.classes = cls;
  std::sort(s.classes.begin(), s.classes.end());
  s.classes.erase(std::unique(s.classes.begin(), s.classes.end()), s.classes.end());
  if (s.classes.empty()) throw std::runtime_error(dir + ": no class sub-folders found");  // unreachable: kept as a guard
  for (const auto& c : cls)
    s.label.push_back(std::lower_bound(s.classes.begin(), s.classes.end(), c) - s.classes.begin());
  return s;
}

// ---- structure checks -----------------------------------------------------------------------------------------

void check_png(const unsigned char* b, size_t n, const std::string& src) {
  size_t pos = 8;
  for (bool first = true;; first = false) {
    if (n - pos < 12) throw std::runtime_error(src + ": truncated PNG (no IEND chunk)");
    const uint32_t len = be32(b + pos);
    const unsigned char* type = b + pos + 4;
    for (int i = 0; i < 4; ++i)
      if (!std::isalpha(type[i])) throw std::runtime_error(src + ": corrupt PNG (bad chunk type at byte " + std::to_string(pos) + ")");
    const std::string t(reinterpret_cast<const char*>(type), 4);
    if (len > 0x7fffffffu) throw std::runtime_error(src + ": corrupt PNG (chunk " + t + " claims " + std::to_string(len) + " bytes)");
    if (n - pos - 12 < len) throw std::runtime_error(src + ": truncated PNG (no IEND chunk; " + t + " runs past the end)");
    if (first && t != "IHDR") throw std::runtime_error(src + ": corrupt PNG (first chunk is " + t + ", not IHDR)");
    if (!(type[0] & 0x20) && crc32(type, 4 + size_t(len)) != be32(b + pos + 8 + len))  // critical chunks only
      throw std::runtime_error(src + ": corrupt PNG (CRC mismatch in " + t + " chunk)");
    if (t == "IEND") return;
    pos += 12 + size_t(len);
  }
}

void check_jpeg(const unsigned char* b, size_t n, const std::string& src) {
  const std::string trunc = src + ": truncated JPEG (no end-of-image marker)";
  size_t pos = 2;  // after SOI
  for (;;) {
    if (pos >= n) throw std::runtime_error(trunc);
    if (b[pos] != 0xFF) throw std::runtime_error(src + ": corrupt JPEG (no marker at byte " + std::to_string(pos) + ")");
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) throw std::runtime_error(trunc);
    const unsigned char m = b[pos++];
    if (m == 0xD9) return;                              // EOI
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // markers without a length
    if (m == 0x00 || m == 0xD8) throw std::runtime_error(src + ": corrupt JPEG (unexpected marker at byte " + std::to_string(pos - 1) + ")");
    if (n - pos < 2) throw std::runtime_error(trunc);
    const size_t len = (size_t(b[pos]) << 8) | b[pos + 1];
    if (len < 2) throw std::runtime_error(src + ": corrupt JPEG (segment length " + std::to_string(len) + ")");
    if (n - pos < len) throw std::runtime_error(trunc);
    pos += len;
    if (m != 0xDA) continue;
    // SOS: entropy-coded data runs to the next marker other than a stuffed 00, a restart marker or fill.
    for (;;) {
      const void* ff = pos < n ? std::memchr(b + pos, 0xFF, n - pos) : nullptr;
      if (!ff) throw std::runtime_error(trunc);
      pos = static_cast<size_t>(static_cast<const unsigned char*>(ff) - b);
      if (pos + 1 >= n) throw std::runtime_error(trunc);
      const unsigned char nx = b[pos + 1];
      if (nx == 0x00 || (nx >= 0xD0 && nx <= 0xD7)) pos += 2;
      else if (nx == 0xFF) pos += 1;
      else break;  // a real marker at pos
    }
  }
}

// ---- decoding -------------------------------------------------------------------------------------------------

struct Decoded {
  bool ok = false;
  std::vector<uint8_t> chw;            // [C, S, S]
  uint64_t bytes = 0;                  // fstat of what was read
  int64_t mtime = 0;
  bool have_stat = false;
  std::string error;                   // "path: why"
  bool skippable = true;
  std::exception_ptr fatal;            // anything that is not a problem with the file (e.g. bad_alloc)
};

std::string read_file(const std::string& path, Decoded& d) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(path + ": cannot open (" + errno_str() + ")", true);
  struct stat st {};
  const bool statted = ::fstat(fd, &st) == 0;
  if (!statted || !S_ISREG(st.st_mode)) {
    const std::string why = statted ? "not a regular file" : errno_str();
    ::close(fd);
    throw FileError(path + ": cannot read (" + why + ")", true);
  }
  d.bytes = static_cast<uint64_t>(st.st_size);
  d.mtime = mtime_ns(st);
  d.have_stat = true;
  if (d.bytes > kMaxFileBytes) {
    ::close(fd);
    throw FileError(path + ": file of " + std::to_string(d.bytes) + " bytes is too large for an image (limit 1 GiB)", true);
  }
  std::string buf(d.bytes, '\0');
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t r = ::read(fd, &buf[done], buf.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const std::string why = r < 0 ? errno_str() : "file shrank while reading";
      ::close(fd);
      throw FileError(path + ": read failed (" + why + ")", true);
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return buf;
}

void decode_into(const std::string& path, const ImageFolderOptions& o, Decoded& d) {
  const std::string data = read_file(path, d);
  const auto* b = reinterpret_cast<const unsigned char*>(data.data());
  try {
    check_image_complete(b, data.size(), path);
  } catch (const std::runtime_error& e) {
    throw FileError(e.what(), true);
  }
  int w = 0, h = 0, c = 0;
  const int len = static_cast<int>(data.size());
  if (!stbi_info_from_memory(b, len, &w, &h, &c))
    throw FileError(path + ": cannot read image (" + stbi_failure_reason() + ")", true);
  if (w <= 0 || h <= 0 || w > kImageFolderMaxSide || h > kImageFolderMaxSide)
    throw FileError(path + ": image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is larger than the " +
                        std::to_string(kImageFolderMaxSide) + "-pixel side limit", true);
  const int S = o.size, C = o.channels, m = std::min(w, h);
  if (m < S && !o.allow_upscale)
    throw FileError(path + ": image is " + std::to_string(w) + "x" + std::to_string(h) + ", its shorter side " +
                        std::to_string(m) + " is below the size " + std::to_string(S) + " (--allow-upscale enlarges it)", false);
  std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load_from_memory(b, len, &w, &h, &c, C), stbi_image_free);
  if (!px) throw FileError(path + ": cannot decode image (" + stbi_failure_reason() + ")", true);
  const size_t x0 = size_t(w - m) / 2, y0 = size_t(h - m) / 2;
  const unsigned char* crop = px.get() + (y0 * size_t(w) + x0) * C;  // [m, m, C] with row stride w·C
  std::vector<uint8_t> hwc(size_t(S) * S * C);                          // [S, S, C]
  if (m == S) {
    for (int y = 0; y < S; ++y) std::memcpy(&hwc[size_t(y) * S * C], crop + size_t(y) * w * C, size_t(S) * C);
  } else if (!stbir_resize_uint8_generic(crop, m, m, w * C, hwc.data(), S, S, 0, C, STBIR_ALPHA_CHANNEL_NONE, 0,
                                         STBIR_EDGE_CLAMP, m > S ? STBIR_FILTER_MITCHELL : STBIR_FILTER_CATMULLROM,
                                         STBIR_COLORSPACE_LINEAR, nullptr)) {
    throw std::bad_alloc();  // stbir fails only when it cannot allocate
  }
  d.chw.resize(hwc.size());  // [C, S, S]
  const size_t plane = size_t(S) * S;
  for (size_t i = 0; i < plane; ++i)
    for (int ch = 0; ch < C; ++ch) d.chw[ch * plane + i] = hwc[i * C + ch];
  d.ok = true;
}

void decode_one(const std::string& path, const ImageFolderOptions& o, Decoded& d) {
  try {
    decode_into(path, o, d);
  } catch (const FileError& e) {
    d.error = e.what();
    d.skippable = e.skippable;
  } catch (...) {
    d.fatal = std::current_exception();
  }
}

// ---- the manifest ---------------------------------------------------------------------------------------------

struct Entry {
  bool kept = false;
  uint64_t bytes = 0;
  int64_t mtime = 0;
  std::string rel;
};

struct Manifest {
  int size = 0, channels = 0;
  bool labels = false, allow_upscale = false;
  std::string dir;
  std::vector<std::string> classes;
  std::vector<Entry> entries;
};

std::string options_line(int size, int channels, bool labels, bool allow_upscale) {
  return "options\tsize=" + std::to_string(size) + "\tchannels=" + std::to_string(channels) +
         "\tlabels=" + (labels ? "1" : "0") + "\tallow_upscale=" + (allow_upscale ? "1" : "0");
}

std::string manifest_text(const Manifest& m) {
  std::ostringstream s;
  s << kManifestTitle << '\t' << kImageCacheVersion << '\n'
    << options_line(m.size, m.channels, m.labels, m.allow_upscale) << '\n'
    << "dir\t" << escape(m.dir) << '\n'
    << "classes\t" << m.classes.size();
  for (const auto& c : m.classes) s << '\t' << escape(c);
  s << "\nfiles\t" << m.entries.size() << '\n';
  for (const auto& e : m.entries)
    s << (e.kept ? "kept" : "skipped") << '\t' << e.bytes << '\t' << e.mtime << '\t' << escape(e.rel) << '\n';
  return s.str();
}

// Parses a manifest; returns "" or why it is corrupt.
std::string parse_manifest(const std::string& text, Manifest& m) {
  std::vector<std::string> lines = split(text, '\n');
  if (lines.empty() || !lines.back().empty()) return "manifest does not end with a newline";
  lines.pop_back();
  if (lines.size() < 4 || lines[0] != std::string(kManifestTitle) + "\t" + std::to_string(kImageCacheVersion))
    return "manifest has a wrong title line";
  const auto opt = split(lines[1], '\t');
  if (opt.size() != 5 || opt[0] != "options") return "manifest has a bad options line";
  for (size_t i = 1; i < opt.size(); ++i) {
    const auto eq = opt[i].find('=');
    uint64_t v = 0;
    if (eq == std::string::npos || !parse_u64(opt[i].substr(eq + 1), v) || v > (1u << 20)) return "manifest has a bad option " + opt[i];
    const std::string k = opt[i].substr(0, eq);
    if (k == "size") m.size = static_cast<int>(v);
    else if (k == "channels") m.channels = static_cast<int>(v);
    else if (k == "labels") m.labels = v != 0;
    else if (k == "allow_upscale") m.allow_upscale = v != 0;
    else return "manifest has an unknown option " + k;
  }
  const auto dl = split(lines[2], '\t');
  if (dl.size() != 2 || dl[0] != "dir" || !unescape(dl[1], m.dir)) return "manifest has a bad dir line";
  const auto cl = split(lines[3], '\t');
  uint64_t k = 0;
  if (cl.size() < 2 || cl[0] != "classes" || !parse_u64(cl[1], k) || k != cl.size() - 2) return "manifest has a bad classes line";
  for (size_t i = 2; i < cl.size(); ++i) {
    std::string c;
    if (!unescape(cl[i], c)) return "manifest has a bad class name";
    m.classes.push_back(c);
  }
  if (lines.size() < 5) return "manifest has no files line";
  const auto fl = split(lines[4], '\t');
  uint64_t nf = 0;
  if (fl.size() != 2 || fl[0] != "files" || !parse_u64(fl[1], nf) || nf != lines.size() - 5) return "manifest has a bad files count";
  for (size_t i = 5; i < lines.size(); ++i) {
    const auto f = split(lines[i], '\t');
    Entry e;
    uint64_t mt = 0;
    if (f.size() != 4 || (f[0] != "kept" && f[0] != "skipped") || !parse_u64(f[1], e.bytes) || !parse_u64(f[2], mt) ||
        mt > uint64_t(std::numeric_limits<int64_t>::max()) || !unescape(f[3], e.rel))
      return "manifest line " + std::to_string(i + 1) + " is malformed";
    e.kept = f[0] == "kept";
    e.mtime = static_cast<int64_t>(mt);
    m.entries.push_back(std::move(e));
  }
  return "";
}

// ---- the cache file -------------------------------------------------------------------------------------------

struct Mapped {
  std::shared_ptr<void> hold;
  const unsigned char* base = nullptr;
  size_t len = 0;
};

Mapped map_fd(int fd, size_t len, const std::string& path) {
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap failed (" + errno_str() + ")");
  Mapped m;
  m.hold = std::shared_ptr<void>(p, [len](void* q) { ::munmap(q, len); });
  m.base = static_cast<const unsigned char*>(p);
  m.len = len;
  return m;
}

struct Header {
  uint32_t version = 0, c = 0, s = 0, flags = 0;
  uint64_t n = 0, labels_off = 0, manifest_off = 0, manifest_len = 0, manifest_hash = 0;
};

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

// Checks a mapped cache file and reads it into `out` + `m`; returns "" or why it cannot be used.
std::string read_cache(const Mapped& map, Manifest& m, std::vector<int64_t>& labels,
                       const uint8_t*& pixels, Header& h) {
  if (map.len < kPrefixBytes) return "is truncated (" + std::to_string(map.len) + " bytes)";
  const unsigned char* p = map.base;
  if (std::memcmp(p, kMagic, 8) != 0) return "is not an image cache (bad magic)";
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

// Why a readable cache does not fit this scan and these options; "" if it does.
std::string compare(const Manifest& m, const Scan& s, const ImageFolderOptions& o, const std::string& dir) {
  if (m.size != o.size) return "built for size " + std::to_string(m.size) + ", now " + std::to_string(o.size);
  if (m.channels != o.channels) return "built for " + std::to_string(m.channels) + " channels, now " + std::to_string(o.channels);
  if (m.labels != o.labels) return std::string("built ") + (m.labels ? "with" : "without") + " labels, now " + (o.labels ? "with" : "without");
  if (m.allow_upscale != o.allow_upscale)
    return std::string("built with upscaling ") + (m.allow_upscale ? "allowed" : "refused") + ", now " + (o.allow_upscale ? "allowed" : "refused");
  const size_t n = std::max(m.entries.size(), s.files.size());
  for (size_t i = 0; i < n; ++i) {
    const bool have_old = i < m.entries.size(), have_new = i < s.files.size();
    if (have_old && have_new && m.entries[i].rel == s.files[i].rel) {
      const Entry& e = m.entries[i];
      const FileInfo& f = s.files[i];
      if (e.bytes != f.bytes)
        return join(dir, f.rel) + " changed (size " + std::to_string(e.bytes) + " -> " + std::to_string(f.bytes) + ")";
      if (e.mtime != f.mtime) return join(dir, f.rel) + " changed (mtime " + fmt_mtime(e.mtime) + " -> " + fmt_mtime(f.mtime) + ")";
      continue;
    }
    if (have_new && (!have_old || s.files[i].rel < m.entries[i].rel)) return join(dir, s.files[i].rel) + " was added";
    return join(dir, m.entries[i].rel) + " was removed";
  }
  if (m.classes != s.classes) return "the class list changed";  // implied by the file list; kept as a guard
  if (!o.skip_bad) {
    size_t k = 0;
    const Entry* first = nullptr;
    for (const auto& e : m.entries)
      if (!e.kept && ++k == 1) first = &e;
    if (first)
      return "it skipped " + std::to_string(k) + " unreadable file(s) (first " + join(dir, first->rel) + ") and skip_bad is off";
  }
  return "";
}

// Buffered writes to a file descriptor; errors name the cache (the file the user knows), not the temp file.
class Writer {
 public:
  Writer(int fd, std::string name) : fd_(fd), name_(std::move(name)) { buf_.reserve(1 << 20); }
  void put(const void* p, size_t n) {
    const auto* c = static_cast<const char*>(p);
    if (buf_.size() + n > buf_.capacity()) flush();
    if (n >= buf_.capacity()) write_all(c, n);
    else buf_.append(c, n);
  }
  void flush() {
    write_all(buf_.data(), buf_.size());
    buf_.clear();
  }
  uint64_t offset() const { return written_ + buf_.size(); }

 private:
  void write_all(const char* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw std::runtime_error(name_ + ": write failed (" + errno_str() + "); the previous cache is untouched");
      p += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
  }
  int fd_;
  std::string name_, buf_;
  uint64_t written_ = 0;
};

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

int thread_count(const ImageFolderOptions& o, size_t files) {
  int t = o.threads;
  if (t <= 0) t = std::min(8, std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(size_t(t), files)));
}

}  // namespace

void check_image_complete(const unsigned char* b, size_t n, const std::string& source) {
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 8 && std::memcmp(b, png_sig, 8) == 0) return check_png(b, n, source);
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return check_jpeg(b, n, source);
  throw std::runtime_error(source + ": not a PNG or JPEG file (" + (n == 0 ? "empty" : "unknown signature") + ")");
}

struct ImageFolderBuilder {
  // Decodes every scanned file in order, handing each kept image [C,S,S] to `sink`; fills the manifest entries,
  // labels, files and skipped count of `out`.
  template <class Sink>
  static void decode_all(const std::string& dir, const Scan& s, const ImageFolderOptions& o, const std::string& what,
                         Manifest& m, ImageFolder& out, Sink&& sink) {
    const size_t n = s.files.size();
    const int threads = thread_count(o, n);
    say(o, "decoding " + std::to_string(n) + " images from " + dir + " " + what);
    const size_t batch = size_t(threads) * 16;
    size_t next_report = 1000;
    std::vector<Decoded> slot(std::min(batch, n));
    for (size_t start = 0; start < n; start += batch) {
      const size_t count = std::min(batch, n - start);
      for (size_t i = 0; i < count; ++i) slot[i] = Decoded();
      std::atomic<size_t> next{0};
      auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < count;) decode_one(join(dir, s.files[start + i].rel), o, slot[i]);
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < threads && size_t(t) < count; ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
      for (size_t i = 0; i < count; ++i) {  // in order, so the first error reported is the first file's
        Decoded& d = slot[i];
        const FileInfo& f = s.files[start + i];
        if (d.fatal) std::rethrow_exception(d.fatal);
        Entry e{d.ok, d.have_stat ? d.bytes : f.bytes, d.have_stat ? d.mtime : f.mtime, f.rel};
        if (!d.ok) {
          if (!o.skip_bad || !d.skippable) throw std::runtime_error(d.error);
          say(o, "skipping " + d.error);
          ++out.skipped_;
        } else {
          sink(d.chw);
          out.files_.push_back(f.rel);
          if (o.labels) out.labels_.push_back(s.label[start + i]);
        }
        m.entries.push_back(std::move(e));
        d.chw = std::vector<uint8_t>();
      }
      const size_t done = start + count;
      if (done >= next_report && done < n) {
        say(o, "decoding " + std::to_string(done) + "/" + std::to_string(n) + " images");
        next_report = (done / 1000 + 1) * 1000;
      }
    }
    if (out.files_.empty())
      throw std::runtime_error(dir + ": none of the " + std::to_string(n) + " image files could be decoded (all skipped)");
    out.n_ = static_cast<int64_t>(out.files_.size());
    say(o, "decoded " + std::to_string(out.n_) + " images" +
               (out.skipped_ ? " (" + std::to_string(out.skipped_) + " skipped)" : std::string()) + " " + what);
  }

  static Manifest new_manifest(const std::string& dir, const Scan& s, const ImageFolderOptions& o) {
    Manifest m;
    m.size = o.size;
    m.channels = o.channels;
    m.labels = o.labels;
    m.allow_upscale = o.allow_upscale;
    m.dir = dir;
    m.classes = s.classes;
    return m;
  }

  static ImageFolder in_memory(const std::string& dir, const Scan& s, const ImageFolderOptions& o) {
    ImageFolder out;
    out.c_ = o.channels;
    out.s_ = o.size;
    out.classes_ = s.classes;
    Manifest m = new_manifest(dir, s, o);
    auto buf = std::make_shared<std::vector<uint8_t>>();
    buf->reserve(s.files.size() * size_t(o.channels) * o.size * o.size);  // an upper bound: skipped files shrink it
    decode_all(dir, s, o, "(no cache)", m, out, [&](const std::vector<uint8_t>& img) {
      buf->insert(buf->end(), img.begin(), img.end());
    });
    out.pixels_ = buf->data();
    out.hold_ = buf;
    return out;
  }

  // Writes the cache through a temp file and returns it mapped.
  static ImageFolder build_cache(const std::string& dir, const Scan& s, const ImageFolderOptions& o) {
    const std::string& path = o.cache;
    const fs::path parent = fs::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) fs::create_directories(parent, ec);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(path + ": cannot write the image cache (" + errno_str() + ")");
    try {
      ImageFolder out;
      out.c_ = o.channels;
      out.s_ = o.size;
      out.classes_ = s.classes;
      Manifest m = new_manifest(dir, s, o);
      Writer w(fd, path);
      unsigned char prefix[kPrefixBytes] = {};
      w.put(prefix, sizeof(prefix));  // placeholder, rewritten at the end
      decode_all(dir, s, o, "into " + path, m, out, [&](const std::vector<uint8_t>& img) { w.put(img.data(), img.size()); });
      Header h;
      h.version = kImageCacheVersion;
      h.c = uint32_t(o.channels);
      h.s = uint32_t(o.size);
      h.n = uint64_t(out.n_);
      h.flags = o.labels ? 1 : 0;
      h.labels_off = w.offset();
      for (int64_t l : out.labels_) {
        unsigned char b[8];
        put_le(b, uint64_t(l), 8);
        w.put(b, 8);
      }
      h.manifest_off = w.offset();
      const std::string text = manifest_text(m);
      w.put(text.data(), text.size());
      w.flush();
      h.manifest_len = text.size();
      h.manifest_hash = fnv1a64(text.data(), text.size());
      encode_header(h, prefix);
      if (::pwrite(fd, prefix, sizeof(prefix), 0) != ssize_t(sizeof(prefix)))
        throw std::runtime_error(path + ": write failed (" + errno_str() + "); the previous cache is untouched");
      if (::fsync(fd) != 0) throw std::runtime_error(path + ": flush failed (" + errno_str() + "); the previous cache is untouched");
      // Map the inode just written (not whatever the path names later), then publish it.
      Mapped map = map_fd(fd, size_t(h.manifest_off + h.manifest_len), path);
      if (::rename(tmp.c_str(), path.c_str()) != 0)
        throw std::runtime_error(path + ": rename failed (" + errno_str() + "); the previous cache is untouched");
      ::close(fd);
      fsync_dir(parent);
      out.hold_ = map.hold;
      out.pixels_ = map.base + kPrefixBytes;
      out.from_cache_ = false;
      return out;
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
  }

  // Opens an existing cache; returns "" and fills `out` if it can be used, else why not.
  static std::string try_cache(const std::string& dir, const Scan& s, const ImageFolderOptions& o, ImageFolder& out) {
    const int fd = ::open(o.cache.c_str(), O_RDONLY | O_CLOEXEC);
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
    Mapped map;
    try {
      map = map_fd(fd, size_t(st.st_size), o.cache);
    } catch (const std::runtime_error&) {
      ::close(fd);
      return "cannot be mapped";
    }
    ::close(fd);
    Manifest m;
    Header h;
    const uint8_t* pixels = nullptr;
    std::vector<int64_t> labels;
    std::string why = read_cache(map, m, labels, pixels, h);
    if (why.empty()) {
      why = compare(m, s, o, dir);
      if (!why.empty()) why = "is stale: " + why;
    }
    if (!why.empty()) return why;
    out.hold_ = map.hold;
    out.pixels_ = pixels;
    out.n_ = int64_t(h.n);
    out.c_ = int(h.c);
    out.s_ = int(h.s);
    out.labels_ = std::move(labels);
    out.classes_ = m.classes;
    out.files_.clear();
    out.skipped_ = 0;
    for (const auto& e : m.entries) {
      if (e.kept) out.files_.push_back(e.rel);
      else ++out.skipped_;
    }
    out.from_cache_ = true;
    return "";
  }
};

ImageFolder ImageFolder::load(const std::string& dir, const ImageFolderOptions& o) {
  if (o.size <= 0 || o.size > kImageFolderMaxSide)
    throw std::runtime_error(dir + ": image size must be in 1.." + std::to_string(kImageFolderMaxSide) + " (got " + std::to_string(o.size) + ")");
  if (o.channels != 1 && o.channels != 3)
    throw std::runtime_error(dir + ": channels must be 1 or 3 (got " + std::to_string(o.channels) + ")");
  const Scan s = scan_dir(dir, o.labels);
  if (o.cache.empty()) return ImageFolderBuilder::in_memory(dir, s, o);
  ImageFolder out;
  const std::string why = ImageFolderBuilder::try_cache(dir, s, o, out);
  if (why.empty()) {
    say(o, "using image cache " + o.cache + " (" + std::to_string(out.n_) + " images of " + std::to_string(out.c_) + "x" +
               std::to_string(out.s_) + "x" + std::to_string(out.s_) + ")");
    return out;
  }
  // A file that is not a cache at all (a mistyped --cache pointing at a checkpoint, say) is never replaced.
  if (why == "is not an image cache (bad magic)")
    throw std::runtime_error(o.cache + ": exists and is not a ddpm image cache; refusing to overwrite it (remove it "
                             "or choose another cache path)");
  say(o, "cache " + o.cache + " " + why + "; " + (why == "does not exist" ? "building it" : "rebuilding"));
  return ImageFolderBuilder::build_cache(dir, s, o);
}

}  // namespace ddpm
