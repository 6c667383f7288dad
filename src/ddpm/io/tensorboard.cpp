// tensorboard.cpp — see tensorboard.h. No LibTorch, no libprotobuf.
#include "ddpm/io/tensorboard.h"
#include "ddpm/util/little_endian.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace ddpm {
namespace {

std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}


// Protobuf wire format: key = field << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire) { put_varint(out, (uint64_t(field) << 3) | uint64_t(wire)); }
void put_varint_field(std::string& out, int field, int64_t v) {  // int32/int64: negatives take 10 bytes
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}
void put_double_field(std::string& out, int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_key(out, field, 1);
  append_le(out, bits, 8);
}
void put_float_field(std::string& out, int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_key(out, field, 5);
  append_le(out, bits, 4);
}
void put_bytes_field(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event header: wall_time (1), step (2, left out when 0).
std::string event_head(double wall_time, int64_t step) {
  std::string ev;
  put_double_field(ev, 1, wall_time);
  if (step != 0) put_varint_field(ev, 2, step);
  return ev;
}

std::string errno_text() { return std::strerror(errno); }

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h = buf;
  for (char& c : h)
    if (c == '/') c = '_';
  return h;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(const std::string& payload) {
  std::string out;
  out.reserve(payload.size() + 16);
  append_le(out, payload.size(), 8);
  append_le(out, masked_crc32c(out.data(), 8), 4);
  out += payload;
  append_le(out, masked_crc32c(payload.data(), payload.size()), 4);
  return out;
}

std::string encode_file_version_event(double wall_time, const std::string& file_version) {
  std::string ev = event_head(wall_time, 0);
  put_bytes_field(ev, 3, file_version);
  return ev;
}

std::string encode_scalar_event(double wall_time, int64_t step,
                                const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;
    put_bytes_field(value, 1, tag);
    put_float_field(value, 2, static_cast<float>(v));  // a oneof member: written even when 0
    put_bytes_field(summary, 1, value);
  }
  std::string ev = event_head(wall_time, step);
  put_bytes_field(ev, 5, summary);
  return ev;
}

std::string encode_image_event(double wall_time, int64_t step, const std::string& tag,
                               const std::string& encoded_image, int height, int width, int colorspace) {
  std::string image;
  put_varint_field(image, 1, height);
  put_varint_field(image, 2, width);
  put_varint_field(image, 3, colorspace);
  put_bytes_field(image, 4, encoded_image);
  std::string value;
  put_bytes_field(value, 1, tag);
  put_bytes_field(value, 4, image);
  std::string summary;
  put_bytes_field(summary, 1, value);
  std::string ev = event_head(wall_time, step);
  put_bytes_field(ev, 5, summary);
  return ev;
}

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

EventWriter::EventWriter(const std::string& dir, const std::string& suffix) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create directory (" + ec.message() + ")");
  const std::string stem = (std::filesystem::path(dir) / "events.out.tfevents.").string() +
                           std::to_string(static_cast<long long>(std::time(nullptr))) + "." + host_name() + "." +
                           std::to_string(static_cast<long long>(getpid()));
  for (int k = 0;; ++k) {
    path_ = stem + (k ? "." + std::to_string(k) : "") + suffix;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ >= 0) break;
    if (errno != EEXIST || k >= 1000) throw std::runtime_error(path_ + ": cannot create event file (" + errno_text() + ")");
  }
  try {
    write_record(encode_file_version_event(unix_time_now()));
  } catch (...) {
    close();
    throw;
  }
}

EventWriter::~EventWriter() { close(); }

EventWriter::EventWriter(EventWriter&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), size_(other.size_) {
  other.fd_ = -1;
}

EventWriter& EventWriter::operator=(EventWriter&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    size_ = other.size_;
    other.fd_ = -1;
  }
  return *this;
}

void EventWriter::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void EventWriter::write_record(const std::string& payload) {
  if (fd_ < 0) throw std::runtime_error(path_ + ": event writer is closed");
  const std::string rec = tfrecord_frame(payload);
  size_t done = 0;
  while (done < rec.size()) {
    const ssize_t w = ::write(fd_, rec.data() + done, rec.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = w < 0 ? errno_text() : "no progress";
      // Best effort: cut the torn record off so that records added later stay readable.
      const bool cut = done == 0 || ::ftruncate(fd_, static_cast<off_t>(size_)) == 0;
      (void)cut;
      throw std::runtime_error(path_ + ": cannot write event (" + why + ")");
    }
    done += static_cast<size_t>(w);
  }
  size_ += rec.size();
}

void EventWriter::add_scalar(const std::string& tag, int64_t step, double value, double wall_time) {
  add_scalars(step, {{tag, value}}, wall_time);
}

void EventWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values,
                              double wall_time) {
  write_record(encode_scalar_event(wall_time < 0 ? unix_time_now() : wall_time, step, values));
}

void EventWriter::add_image(const std::string& tag, int64_t step, const std::string& png_bytes, int height,
                            int width, int channels, double wall_time) {
  if (height <= 0 || width <= 0 || channels < 1 || channels > 4)
    throw std::runtime_error(path_ + ": image '" + tag + "' has an invalid shape " + std::to_string(height) + "x" +
                             std::to_string(width) + "x" + std::to_string(channels));
  write_record(encode_image_event(wall_time < 0 ? unix_time_now() : wall_time, step, tag, png_bytes, height, width,
                                  channels));
}

void EventWriter::flush() {
  if (fd_ < 0) throw std::runtime_error(path_ + ": event writer is closed");
  if (::fsync(fd_) != 0) throw std::runtime_error(path_ + ": cannot fsync event file (" + errno_text() + ")");
}

}  // namespace ddpm
