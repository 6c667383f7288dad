// npz.cpp — see npz.h. No LibTorch.
#include "ddpm/io/formats/npz.h"

#include "ddpm/util/little_endian.h"
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ddpm {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& why) {
  throw std::runtime_error(source + ": " + why);
}

// Text from a file, fit for a one-line message: control bytes escaped, long text cut.
std::string printable(const std::string& s, size_t max = 64) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// Little-endian fields (util/little_endian.h); callers check the bounds first.
uint64_t le(const char* p, size_t off, int bytes) { return get_le(p + off, bytes); }
void put_le(std::string& out, uint64_t v, int bytes) { append_le(out, v, bytes); }
void patch_le(std::string& out, size_t off, uint64_t v, int bytes) {
  ddpm::put_le(reinterpret_cast<unsigned char*>(&out[off]), v, bytes);
}

// zlib takes 32-bit lengths: feed it at most 1 GiB at a time.
constexpr uint64_t kZlibChunk = 1ull << 30;

uint32_t crc32_update(uint32_t crc, const char* p, uint64_t n) {
  uLong c = crc;
  while (n > 0) {
    const auto take = static_cast<uInt>(std::min(n, kZlibChunk));
    c = crc32(c, reinterpret_cast<const Bytef*>(p), take);
    p += take;
    n -= take;
  }
  return static_cast<uint32_t>(c);
}

// ---- dtypes and shapes ---------------------------------------------------------------------------------------

// The canonical spelling ("|u1", "<f4") of a supported descr, and its itemsize in *size.
std::string canonical_dtype(const std::string& d, const std::string& source, size_t* size) {
  size_t i = 0;
  char order = '|';
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) order = d[i++];
  const std::string rest = d.substr(i);
  char kind = 0;
  size_t n = 0;
  if (rest == "?") {
    kind = 'b', n = 1;
  } else if (rest.size() == 2 && rest[1] >= '1' && rest[1] <= '8') {
    kind = rest[0], n = size_t(rest[1] - '0');
  }
  const bool ok = ((kind == 'u' || kind == 'i') && (n == 1 || n == 2 || n == 4 || n == 8)) ||
                  (kind == 'f' && (n == 4 || n == 8)) || (kind == 'b' && n == 1);
  if (!ok)
    fail(source, "unsupported dtype '" + printable(d) + "' (supported: |u1 |i1 |b1 <u2 <i2 <u4 <i4 <u8 <i8 <f4 <f8)");
  if (order == '>' && n > 1)
    fail(source, "big-endian dtype '" + d + "' is not supported (save it little-endian in numpy: a.astype('<" +
                     std::string(1, kind) + std::to_string(n) + "'))");
  if (size) *size = n;
  return (n == 1 ? "|" : "<") + std::string(1, kind) + std::to_string(n);
}

// Python's repr of a shape tuple: (), (3,), (2, 28, 28, 1). Cut after max_dims dimensions for messages.
std::string shape_repr(const std::vector<int64_t>& shape, size_t max_dims = SIZE_MAX) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i == max_dims) {
      s += "...";
      break;
    }
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// prod(shape), as numpy counts it: a zero dimension makes it 0, but the other dimensions must still multiply
// to at most 2^62.
uint64_t checked_numel(const std::vector<int64_t>& shape, const std::string& source) {
  uint64_t prod = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) fail(source, "negative dimension in shape " + shape_repr(shape, 8));
    if (d == 0) {
      empty = true;
      continue;
    }
    if (uint64_t(d) > kNpyMaxElements / prod)
      fail(source, "shape " + shape_repr(shape, 8) + " has more than 2^62 elements");
    prod *= uint64_t(d);
  }
  return empty ? 0 : prod;
}

// ---- the .npy header dict -------------------------------------------------------------------------------------

// A hand parser for exactly the dict numpy writes, with the freedom a Python literal allows in whitespace,
// quotes, key order and trailing commas.
class HeaderParser {
 public:
  HeaderParser(const char* p, size_t n, const std::string& source) : p_(p), n_(n), source_(source) {}

  void parse(NpyArray& a) {
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    expect('{', "'{' opening the header dict");
    skip_ws();
    while (peek() != '}') {
      const std::string key = string_literal("a quoted key or '}'");
      expect(':', "':' after key '" + printable(key) + "'");
      if (key == "descr") {
        if (seen_descr) bad("repeated key 'descr'");
        skip_ws();
        if (peek() == '[') bad("structured dtypes (a list as 'descr') are not supported");
        a.dtype = string_literal("a quoted dtype after 'descr'");
        seen_descr = true;
      } else if (key == "fortran_order") {
        if (seen_fortran) bad("repeated key 'fortran_order'");
        a.fortran_order = boolean();
        seen_fortran = true;
      } else if (key == "shape") {
        if (seen_shape) bad("repeated key 'shape'");
        a.shape = tuple();
        seen_shape = true;
      } else {
        bad("unknown key '" + printable(key) + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
      } else if (peek() != '}') {
        bad("expected ',' or '}' after the value of '" + key + "'");
      }
    }
    ++i_;  // '}'
    skip_ws();
    if (!at_end()) bad("unexpected text after the header dict");
    if (!seen_descr) bad("missing key 'descr'");
    if (!seen_fortran) bad("missing key 'fortran_order'");
    if (!seen_shape) bad("missing key 'shape'");
  }

 private:
  const char* p_;
  size_t n_;
  size_t i_ = 0;
  const std::string& source_;

  [[noreturn]] void bad(const std::string& why) const {
    fail(source_, "bad .npy header: " + why + " (at header byte " + std::to_string(i_) + ")");
  }
  bool at_end() const { return i_ >= n_; }
  char peek() const { return at_end() ? '\0' : p_[i_]; }
  void skip_ws() {
    while (!at_end() && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r' || p_[i_] == '\f'))
      ++i_;
  }
  void expect(char c, const std::string& what) {
    skip_ws();
    if (at_end() || p_[i_] != c) bad("expected " + what);
    ++i_;
  }
  std::string string_literal(const std::string& what) {
    skip_ws();
    const char q = peek();
    if (at_end() || (q != '\'' && q != '"')) bad("expected " + what);
    const size_t start = ++i_;
    while (!at_end() && p_[i_] != q) {
      if (p_[i_] == '\\') bad("escape sequences in strings are not supported");
      if (p_[i_] == '\n') break;
      ++i_;
    }
    if (at_end() || p_[i_] != q) bad("unterminated string");
    return std::string(p_ + start, i_++ - start);
  }
  bool boolean() {
    skip_ws();
    const size_t start = i_;
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(p_[i_])) || p_[i_] == '_')) ++i_;
    const std::string word(p_ + start, i_ - start);
    if (word == "True") return true;
    if (word == "False") return false;
    i_ = start;
    bad("'fortran_order' must be True or False");
  }
  std::vector<int64_t> tuple() {
    skip_ws();
    if (peek() == '[') bad("'shape' must be a tuple, not a list");
    expect('(', "a tuple '(' after 'shape'");
    std::vector<int64_t> dims;
    skip_ws();
    if (peek() == ')') return ++i_, dims;
    for (;;) {
      dims.push_back(integer());
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
        if (peek() == ')') return ++i_, dims;
      } else if (peek() == ')') {
        if (dims.size() == 1) bad("'shape' (N) is not a tuple: a 1-d shape is written (N,)");
        return ++i_, dims;
      } else {
        bad("expected ',' or ')' in 'shape'");
      }
    }
  }
  int64_t integer() {
    skip_ws();
    if (peek() == '-') bad("negative dimension in 'shape'");
    if (!std::isdigit(static_cast<unsigned char>(peek()))) bad("expected an integer dimension in 'shape'");
    if (peek() == '0' && i_ + 1 < n_ && std::isdigit(static_cast<unsigned char>(p_[i_ + 1])))
      bad("leading zero in a dimension");
    uint64_t v = 0;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(p_[i_]))) {
      const uint64_t digit = uint64_t(p_[i_] - '0');
      if (v > (kNpyMaxElements - digit) / 10) bad("dimension larger than 2^62 in 'shape'");
      v = v * 10 + digit;
      ++i_;
    }
    return static_cast<int64_t>(v);
  }
};

// Validates the preamble and header of a .npy file and its size against the data; returns the array without
// its data, and the offset of the data in *data_offset.
NpyArray parse_npy_header(const char* p, size_t n, const std::string& source, size_t* data_offset) {
  if (n < 6 || std::memcmp(p, "\x93NUMPY", 6) != 0)
    fail(source, "not a .npy file (bad magic: expected \\x93NUMPY)");
  if (n < 10) fail(source, "truncated .npy preamble (" + std::to_string(n) + " bytes)");
  const int major = static_cast<unsigned char>(p[6]), minor = static_cast<unsigned char>(p[7]);
  if (major < 1 || major > 3 || minor != 0)
    fail(source, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor) +
                     " (expected 1.0, 2.0 or 3.0)");
  const size_t pre = major == 1 ? 10 : 12;
  if (n < pre) fail(source, "truncated .npy preamble (" + std::to_string(n) + " bytes)");
  const uint64_t hlen = le(p, 8, major == 1 ? 2 : 4);
  if (hlen > kNpyMaxHeaderBytes)
    fail(source, "header length " + std::to_string(hlen) + " is over the limit of " +
                     std::to_string(kNpyMaxHeaderBytes) + " bytes");
  if (hlen > n - pre)
    fail(source, "truncated header: it claims " + std::to_string(hlen) + " bytes, the file has " +
                     std::to_string(n - pre) + " after the preamble");
  NpyArray a;
  HeaderParser(p + pre, hlen, source).parse(a);
  size_t item = 0;
  canonical_dtype(a.dtype, source, &item);
  if (a.fortran_order)
    fail(source, "fortran_order=True arrays are not supported (save a C-order array: np.ascontiguousarray(a))");
  const uint64_t numel = checked_numel(a.shape, source);
  const uint64_t have = n - pre - hlen;
  const std::string what = "shape " + shape_repr(a.shape, 8) + " of " + printable(a.dtype) + " needs " +
                           std::to_string(numel) + " x " + std::to_string(item) + " bytes of data, the file has " +
                           std::to_string(have);
  if (numel > have / item) fail(source, "truncated data: " + what);
  if (numel * item != have) fail(source, "extra data after the array: " + what);
  *data_offset = pre + hlen;
  return a;
}

// npy_parse that takes the bytes over, so a member of an .npz is not copied again.
NpyArray npy_parse_owned(std::string&& bytes, const std::string& source) {
  size_t off = 0;
  NpyArray a = parse_npy_header(bytes.data(), bytes.size(), source, &off);
  bytes.erase(0, off);
  a.data = std::move(bytes);
  return a;
}

// Preamble + padded header for `a`, after checking that a's data matches its dtype and shape.
std::string npy_header(const NpyArray& a, const std::string& source) {
  size_t item = 0;
  const std::string dtype = canonical_dtype(a.dtype, source, &item);
  if (a.fortran_order) fail(source, "fortran_order=True is not supported (the data must be in C order)");
  const uint64_t numel = checked_numel(a.shape, source);
  if (a.data.size() % item != 0 || a.data.size() / item != numel)
    fail(source, "data has " + std::to_string(a.data.size()) + " bytes, shape " + shape_repr(a.shape, 8) + " of " +
                     dtype + " needs " + std::to_string(numel) + " x " + std::to_string(item));
  std::string dict = "{'descr': '" + dtype + "', 'fortran_order': False, 'shape': " + shape_repr(a.shape) + ", }";
  // np.save's spare room for growing the first axis in place (GROWTH_AXIS_MAX_DIGITS = 21): with it, the bytes
  // are np.save's own.
  if (!a.shape.empty()) dict.append(21 - std::to_string(a.shape[0]).size(), ' ');
  // magic + version + length + dict + spaces + '\n', a multiple of 64 bytes (numpy's ARRAY_ALIGN).
  size_t pre = 10;
  size_t total = (pre + dict.size() + 1 + 63) / 64 * 64;
  if (total - pre > 0xffff) {
    pre = 12;
    total = (pre + dict.size() + 1 + 63) / 64 * 64;
  }
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(pre == 10 ? 1 : 2));
  out.push_back(0);
  put_le(out, total - pre, pre == 10 ? 2 : 4);
  out += dict;
  out.append(total - out.size() - 1, ' ');
  out.push_back('\n');
  return out;
}

// ---- ZIP ---------------------------------------------------------------------------------------------------------

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr uint64_t k32 = 0xffffffffu;   // a 32-bit field holding this defers to the ZIP64 extra field
constexpr uint16_t kDosDate = 0x0021;   // 1980-01-01, with DOS time 00:00:00

struct Member {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0, usize = 0, local = 0, data = 0;  // data: offset of the member's bytes in the archive
};

// Raw inflate of `in_size` bytes at `in`, which must produce exactly `declared` bytes and end the stream at
// the last input byte. Stops as soon as the output passes `declared`.
std::string inflate_member(const char* in, uint64_t in_size, uint64_t declared, const std::string& source) {
  struct Stream {
    z_stream zs{};
    bool live = false;
    ~Stream() {
      if (live) inflateEnd(&zs);
    }
  } s;
  if (inflateInit2(&s.zs, -15) != Z_OK) fail(source, "zlib inflateInit2 failed");
  s.live = true;
  std::string out;
  // Deflate expands at most ~1032:1, so a small member cannot make this reserve more than it could produce.
  out.reserve(static_cast<size_t>(std::min<uint64_t>(declared, in_size / 64 * 66048 + 65536)));
  uint64_t fed = 0;
  char chunk[1 << 16];
  for (;;) {
    if (s.zs.avail_in == 0 && fed < in_size) {
      const uint64_t take = std::min(in_size - fed, kZlibChunk);
      s.zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in + fed));
      s.zs.avail_in = static_cast<uInt>(take);
      fed += take;
    }
    s.zs.next_out = reinterpret_cast<Bytef*>(chunk);
    s.zs.avail_out = sizeof chunk;
    const int ret = inflate(&s.zs, Z_NO_FLUSH);
    const size_t got = sizeof chunk - s.zs.avail_out;
    if (got > declared - out.size())
      fail(source, "deflate data inflates past the declared size of " + std::to_string(declared) + " bytes");
    out.append(chunk, got);
    if (ret == Z_STREAM_END) break;
    if (ret == Z_BUF_ERROR) fail(source, "truncated deflate data");
    if (ret != Z_OK)
      fail(source, std::string("corrupt deflate data (") + (s.zs.msg ? s.zs.msg : "inflate error") + ")");
  }
  const uint64_t unused = s.zs.avail_in + (in_size - fed);
  if (unused != 0)
    fail(source, std::to_string(unused) + " bytes after the end of the deflate stream (compressed size " +
                     std::to_string(in_size) + ")");
  if (out.size() != declared)
    fail(source, "inflates to " + std::to_string(out.size()) + " bytes, the directory declares " +
                     std::to_string(declared));
  return out;
}

// Appends the raw deflate stream of the concatenation of `pieces` to `out`.
void deflate_append(std::string& out, const std::vector<std::pair<const char*, uint64_t>>& pieces,
                    const std::string& source) {
  struct Stream {
    z_stream zs{};
    bool live = false;
    ~Stream() {
      if (live) deflateEnd(&zs);
    }
  } s;
  if (deflateInit2(&s.zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fail(source, "zlib deflateInit2 failed");
  s.live = true;
  char chunk[1 << 16];
  int ret = Z_OK;
  for (size_t k = 0; k < pieces.size(); ++k) {
    const char* p = pieces[k].first;
    uint64_t left = pieces[k].second;
    do {  // once even for an empty piece, so the last one always gets Z_FINISH
      const uint64_t take = std::min(left, kZlibChunk);
      s.zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
      s.zs.avail_in = static_cast<uInt>(take);
      p += take;
      left -= take;
      const int flush = (k + 1 == pieces.size() && left == 0) ? Z_FINISH : Z_NO_FLUSH;
      do {
        s.zs.next_out = reinterpret_cast<Bytef*>(chunk);
        s.zs.avail_out = sizeof chunk;
        ret = deflate(&s.zs, flush);
        if (ret == Z_STREAM_ERROR) fail(source, "zlib deflate failed");
        out.append(chunk, sizeof chunk - s.zs.avail_out);
      } while (s.zs.avail_out == 0);
    } while (left > 0);
  }
  if (ret != Z_STREAM_END) fail(source, "zlib deflate did not finish the stream");
}

std::string read_whole_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open file (") + std::strerror(errno) + ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(path, std::string("cannot stat file (") + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t r = ::read(fd, &bytes[done], bytes.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(path, std::string("read error (") + std::strerror(errno) + ")");
    if (r == 0) fail(path, "file shrank while being read");
    done += size_t(r);
  }
  return bytes;
}

}  // namespace

// ---- public API --------------------------------------------------------------------------------------------------

size_t NpyArray::itemsize() const {
  size_t n = 0;
  canonical_dtype(dtype, "npy array", &n);
  return n;
}

int64_t NpyArray::numel() const { return static_cast<int64_t>(checked_numel(shape, "npy array")); }

std::string npy_canonical_dtype(const std::string& dtype, const std::string& source) {
  return canonical_dtype(dtype, source, nullptr);
}

NpyArray npy_parse(const std::string& bytes, const std::string& source) {
  size_t off = 0;
  NpyArray a = parse_npy_header(bytes.data(), bytes.size(), source, &off);
  a.data = bytes.substr(off);
  return a;
}

std::string npy_serialize(const NpyArray& a) {
  std::string out = npy_header(a, "npy_serialize");
  out += a.data;
  return out;
}

std::map<std::string, NpyArray> npz_parse(const std::string& bytes, const std::string& source) {
  const char* p = bytes.data();
  const size_t n = bytes.size();
  if (n >= 6 && std::memcmp(p, "\x93NUMPY", 6) == 0)
    fail(source, "not a .npz file: this is a single .npy array (read it with npy_parse)");
  if (n < kEndSize) fail(source, "not a .npz file (too short for a ZIP archive: " + std::to_string(n) + " bytes)");

  // End of central directory: the last record whose comment length reaches exactly to the end of the file.
  size_t eocd = SIZE_MAX;
  const size_t lowest = n - kEndSize > 0xffff ? n - kEndSize - 0xffff : 0;
  for (size_t pos = n - kEndSize + 1; pos-- > lowest;) {
    if (le(p, pos, 4) == kEndSig && pos + kEndSize + le(p, pos + 20, 2) == n) {
      eocd = pos;
      break;
    }
  }
  if (eocd == SIZE_MAX) fail(source, "not a .npz file (no ZIP end-of-central-directory record)");
  uint64_t disk = le(p, eocd + 4, 2), cd_disk = le(p, eocd + 6, 2), disk_count = le(p, eocd + 8, 2);
  uint64_t count = le(p, eocd + 10, 2), cd_size = le(p, eocd + 12, 4), cd_offset = le(p, eocd + 16, 4);
  size_t records = eocd;  // where the end records start: the directory must end before them

  // ZIP64: the locator just before the end record points at the ZIP64 end record, whose fields win.
  if (eocd >= kZip64LocatorSize && le(p, eocd - kZip64LocatorSize, 4) == kZip64LocatorSig) {
    const size_t loc = eocd - kZip64LocatorSize;
    const uint64_t z64 = le(p, loc + 8, 8), disks = le(p, loc + 16, 4);
    if (le(p, loc + 4, 4) != 0 || disks > 1) fail(source, "multi-disk ZIP archives are not supported");
    if (z64 > loc || loc - z64 < kZip64EndSize || le(p, z64, 4) != kZip64EndSig)
      fail(source, "corrupt ZIP64 end record (bad offset or signature)");
    const uint64_t rec_size = le(p, z64 + 4, 8);
    if (rec_size < kZip64EndSize - 12 || rec_size > loc - z64 - 12) fail(source, "corrupt ZIP64 end record (bad size)");
    disk = le(p, z64 + 16, 4), cd_disk = le(p, z64 + 20, 4), disk_count = le(p, z64 + 24, 8);
    count = le(p, z64 + 32, 8), cd_size = le(p, z64 + 40, 8), cd_offset = le(p, z64 + 48, 8);
    records = z64;
  }
  if (disk != 0 || cd_disk != 0 || disk_count != count) fail(source, "multi-disk ZIP archives are not supported");
  if (cd_offset > records || cd_size > records - cd_offset)
    fail(source, "central directory (" + std::to_string(cd_size) + " bytes at offset " + std::to_string(cd_offset) +
                     ") lies outside the archive");
  if (count > cd_size / kCentralSize)
    fail(source, "central directory of " + std::to_string(cd_size) + " bytes cannot hold " + std::to_string(count) +
                     " entries");

  // Central directory.
  std::vector<Member> members;
  members.reserve(static_cast<size_t>(count));
  std::set<std::string> names;
  const size_t cd_end = cd_offset + cd_size;
  size_t pos = cd_offset;
  for (uint64_t k = 0; k < count; ++k) {
    const std::string entry = "central directory entry " + std::to_string(k);
    if (cd_end - pos < kCentralSize || le(p, pos, 4) != kCentralSig) fail(source, "corrupt " + entry);
    Member m;
    m.flags = uint16_t(le(p, pos + 8, 2));
    m.method = uint16_t(le(p, pos + 10, 2));
    m.crc = uint32_t(le(p, pos + 16, 4));
    m.csize = le(p, pos + 20, 4);
    m.usize = le(p, pos + 24, 4);
    const size_t nlen = le(p, pos + 28, 2), xlen = le(p, pos + 30, 2), clen = le(p, pos + 32, 2);
    uint64_t disk_start = le(p, pos + 34, 2);
    m.local = le(p, pos + 42, 4);
    if (cd_end - pos - kCentralSize < nlen + xlen + clen) fail(source, entry + " runs past the directory");
    m.name.assign(p + pos + kCentralSize, nlen);
    const std::string ms = "member '" + printable(m.name) + "'";
    // Extra fields; the ZIP64 one (id 1) holds, in order, the 64-bit values of the fields saturated above.
    bool zip64_seen = false;
    for (size_t x = pos + kCentralSize + nlen, xend = x + xlen; xend - x >= 4;) {
      const uint64_t id = le(p, x, 2), size = le(p, x + 2, 2);
      if (size > xend - x - 4) fail(source, ms + ": corrupt extra field");
      if (id == 1) {
        if (zip64_seen) fail(source, ms + ": repeated ZIP64 extra field");
        zip64_seen = true;
        size_t q = x + 4;
        const size_t qend = q + size;
        auto take = [&](uint64_t& v, int bytes) {
          if (qend - q < size_t(bytes)) fail(source, ms + ": truncated ZIP64 extra field");
          v = le(p, q, bytes);
          q += bytes;
        };
        if (m.usize == k32) take(m.usize, 8);
        if (m.csize == k32) take(m.csize, 8);
        if (m.local == k32) take(m.local, 8);
        if (disk_start == 0xffff) take(disk_start, 4);
      }
      x += 4 + size;
    }
    pos += kCentralSize + nlen + xlen + clen;

    if (disk_start != 0) fail(source, "multi-disk ZIP archives are not supported");
    if (m.name.size() < 4 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0)
      fail(source, ms + ": not a .npy member (an .npz archive holds only NAME.npy files)");
    if (!names.insert(m.name).second) fail(source, "duplicate " + ms);
    if (m.flags & 1) fail(source, ms + ": encrypted members are not supported");
    if (m.method != 0 && m.method != 8)
      fail(source, ms + ": unsupported compression method " + std::to_string(m.method) + " (only stored and deflate)");
    if (m.usize > kNpzMaxMemberBytes)
      fail(source, ms + ": declared size " + std::to_string(m.usize) + " is over the limit of " +
                       std::to_string(kNpzMaxMemberBytes) + " bytes");
    if (m.method == 0 && m.csize != m.usize)
      fail(source, ms + ": stored member with compressed size " + std::to_string(m.csize) + " != size " +
                       std::to_string(m.usize));
    // Local header: must be there and name the same file; the data follows it.
    if (m.local > cd_offset || cd_offset - m.local < kLocalSize || le(p, m.local, 4) != kLocalSig)
      fail(source, ms + ": local header missing or corrupt (offset " + std::to_string(m.local) + ")");
    const size_t lnlen = le(p, m.local + 26, 2), lxlen = le(p, m.local + 28, 2);
    if (cd_offset - m.local - kLocalSize < lnlen + lxlen) fail(source, ms + ": local header runs into the directory");
    if (bytes.compare(m.local + kLocalSize, lnlen, m.name) != 0)
      fail(source, ms + ": the local header names '" + printable(bytes.substr(m.local + kLocalSize, lnlen)) + "'");
    m.data = m.local + kLocalSize + lnlen + lxlen;
    if (m.csize > cd_offset - m.data)
      fail(source, ms + ": " + std::to_string(m.csize) + " bytes of data at offset " + std::to_string(m.data) +
                       " run into the central directory");
    members.push_back(std::move(m));
  }
  if (pos != cd_end)
    fail(source, "central directory has " + std::to_string(cd_end - pos) + " bytes after its " + std::to_string(count) +
                     " entries");

  // No two members may share bytes (overlapping entries are how small archives inflate to huge ones).
  std::vector<const Member*> by_offset;
  for (const auto& m : members) by_offset.push_back(&m);
  std::sort(by_offset.begin(), by_offset.end(), [](const Member* a, const Member* b) { return a->local < b->local; });
  for (size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->data + by_offset[k - 1]->csize > by_offset[k]->local)
      fail(source, "members '" + printable(by_offset[k - 1]->name) + "' and '" + printable(by_offset[k]->name) +
                       "' overlap");

  std::map<std::string, NpyArray> out;
  for (const auto& m : members) {
    const std::string ms = source + ": member '" + printable(m.name) + "'";
    std::string raw = m.method == 0 ? bytes.substr(m.data, m.csize) : inflate_member(p + m.data, m.csize, m.usize, ms);
    const uint32_t crc = crc32_update(0, raw.data(), raw.size());
    if (crc != m.crc) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "CRC-32 mismatch (directory %08x, data %08x)", m.crc, crc);
      fail(ms, buf);
    }
    out.emplace(m.name.substr(0, m.name.size() - 4), npy_parse_owned(std::move(raw), ms));
  }
  return out;
}

std::string npz_serialize(const std::vector<std::pair<std::string, NpyArray>>& arrays, bool compress,
                          bool force_zip64) {
  struct Entry {
    std::string name, header;  // header: the .npy preamble and dict, followed by the array's data
    const std::string* data = nullptr;
    uint32_t crc = 0;
    uint64_t usize = 0, csize = 0, local = 0;
    bool zip64 = false;  // sizes in a ZIP64 extra field (local and central)
  };
  std::vector<Entry> entries;
  std::set<std::string> names;
  uint64_t stored_total = 0;
  for (const auto& [key, array] : arrays) {
    Entry e;
    e.name = key + ".npy";
    if (!names.insert(e.name).second) fail("npz_serialize", "duplicate array name '" + printable(key) + "'");
    if (e.name.size() > 0xffff) fail("npz_serialize", "array name '" + printable(key) + "' is too long");
    e.header = npy_header(array, "npz_serialize: array '" + printable(key) + "'");
    e.data = &array.data;
    e.usize = e.header.size() + array.data.size();
    e.crc = crc32_update(crc32_update(0, e.header.data(), e.header.size()), array.data.data(), array.data.size());
    e.zip64 = force_zip64 || e.usize >= k32 || (compress && deflateBound(nullptr, uLong(e.usize)) >= k32);
    stored_total += e.usize + 2 * e.name.size() + kLocalSize + kCentralSize + 2 * 28;
    entries.push_back(std::move(e));
  }

  std::string out;
  if (!compress) out.reserve(static_cast<size_t>(stored_total + kZip64EndSize + kZip64LocatorSize + kEndSize));
  auto put_flags_to_date = [&](const Entry& e) {
    const bool utf8 = std::any_of(e.name.begin(), e.name.end(), [](char c) { return c & 0x80; });
    put_le(out, utf8 ? 0x0800 : 0, 2);  // general purpose flags: bit 11, UTF-8 name
    put_le(out, compress ? 8 : 0, 2);   // method
    put_le(out, 0, 2);                  // DOS time
    put_le(out, kDosDate, 2);
  };
  for (auto& e : entries) {
    e.local = out.size();
    put_le(out, kLocalSig, 4);
    put_le(out, e.zip64 ? 45 : 20, 2);  // version needed: 4.5 for ZIP64, else 2.0 (deflate)
    put_flags_to_date(e);
    put_le(out, e.crc, 4);
    const size_t csize_at = out.size();
    put_le(out, e.zip64 ? k32 : e.usize, 4);  // compressed size, patched below when deflating
    put_le(out, e.zip64 ? k32 : e.usize, 4);
    put_le(out, e.name.size(), 2);
    put_le(out, e.zip64 ? 20 : 0, 2);
    out += e.name;
    if (e.zip64) {
      put_le(out, 1, 2);
      put_le(out, 16, 2);
      put_le(out, e.usize, 8);
      put_le(out, e.usize, 8);  // compressed size, patched below when deflating
    }
    const size_t data_at = out.size();
    if (compress) {
      deflate_append(out, {{e.header.data(), e.header.size()}, {e.data->data(), e.data->size()}}, "npz_serialize");
      e.csize = out.size() - data_at;
      if (e.zip64)
        patch_le(out, data_at - 8, e.csize, 8);
      else
        patch_le(out, csize_at, e.csize, 4);
    } else {
      out += e.header;
      out += *e.data;
      e.csize = e.usize;
    }
  }

  const uint64_t cd_offset = out.size();
  for (const auto& e : entries) {
    const bool offset64 = force_zip64 || e.local >= k32;
    put_le(out, kCentralSig, 4);
    put_le(out, e.zip64 || offset64 ? 45 : 20, 2);  // version made by (MS-DOS)
    put_le(out, e.zip64 || offset64 ? 45 : 20, 2);  // version needed
    put_flags_to_date(e);
    put_le(out, e.crc, 4);
    put_le(out, e.zip64 ? k32 : e.csize, 4);
    put_le(out, e.zip64 ? k32 : e.usize, 4);
    put_le(out, e.name.size(), 2);
    put_le(out, (e.zip64 ? 16 : 0) + (offset64 ? 8 : 0) + (e.zip64 || offset64 ? 4 : 0), 2);
    put_le(out, 0, 2);  // comment
    put_le(out, 0, 2);  // disk
    put_le(out, 0, 2);  // internal attributes
    put_le(out, 0, 4);  // external attributes
    put_le(out, offset64 ? k32 : e.local, 4);
    out += e.name;
    if (e.zip64 || offset64) {
      put_le(out, 1, 2);
      put_le(out, (e.zip64 ? 16 : 0) + (offset64 ? 8 : 0), 2);
      if (e.zip64) {
        put_le(out, e.usize, 8);
        put_le(out, e.csize, 8);
      }
      if (offset64) put_le(out, e.local, 8);
    }
  }
  const uint64_t cd_size = out.size() - cd_offset, count = entries.size();

  if (force_zip64 || count >= 0xffff || cd_offset >= k32 || cd_size >= k32) {
    const uint64_t z64 = out.size();
    put_le(out, kZip64EndSig, 4);
    put_le(out, kZip64EndSize - 12, 8);  // size of the rest of the record
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);  // this disk
    put_le(out, 0, 4);  // disk with the directory
    put_le(out, count, 8);
    put_le(out, count, 8);
    put_le(out, cd_size, 8);
    put_le(out, cd_offset, 8);
    put_le(out, kZip64LocatorSig, 4);
    put_le(out, 0, 4);  // disk with the ZIP64 end record
    put_le(out, z64, 8);
    put_le(out, 1, 4);  // number of disks
  }
  put_le(out, kEndSig, 4);
  put_le(out, 0, 2);
  put_le(out, 0, 2);
  put_le(out, std::min<uint64_t>(count, 0xffff), 2);
  put_le(out, std::min<uint64_t>(count, 0xffff), 2);
  put_le(out, std::min(cd_size, k32), 4);
  put_le(out, std::min(cd_offset, k32), 4);
  put_le(out, 0, 2);  // comment length
  return out;
}

std::map<std::string, NpyArray> npz_load(const std::string& path) { return npz_parse(read_whole_file(path), path); }

}  // namespace ddpm
