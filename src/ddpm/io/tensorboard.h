// tensorboard.h — a native writer of TensorBoard event files (scalars and PNG images), without LibTorch,
// TensorFlow or libprotobuf. It is not a reader (the tests carry their own) and knows no other summary kind.
//
// Framing (TFRecord), one record per Event:
//   uint64 LE  length of the payload
//   uint32 LE  masked CRC32C of those 8 length bytes
//   bytes      payload: one serialized tensorflow.Event
//   uint32 LE  masked CRC32C of the payload
// where masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 and CRC32C is Castagnoli (0x82F63B78 reflected).
//
// The protobuf is encoded by hand: three messages and nine fields do not justify a protoc code-generation step
// or a libprotobuf dependency. Field numbers, from tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto:
//   Event         { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary       { repeated Value value = 1; }
//   Summary.Value { string tag = 1; float simple_value = 2; Image image = 4; }
//   Summary.Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
// (file_version/summary and simple_value/image are oneof members there; a zero step is left out, as proto3 does.)
//
// Crash behaviour: each add_* hands one whole framed record to the kernel with write(2), so a crashed process
// loses nothing already added and a crashed machine at most a torn last record, where readers stop. A write that
// fails (disk full) is cut back off the file before the exception, so the file stays a clean record sequence.
// Errors read "<path>: <why>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ddpm {

// CRC32C (Castagnoli), table-driven; chainable: crc32c(b, nb, crc32c(a, na)) == crc32c(a‖b).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// The TFRecord masked CRC32C of data.
uint32_t masked_crc32c(const void* data, size_t n);
// One TFRecord: length, masked CRC of the length, payload, masked CRC of the payload (layout above).
std::string tfrecord_frame(const std::string& payload);

// Serialized tensorflow.Event payloads (unframed).
std::string encode_file_version_event(double wall_time, const std::string& file_version = "brain.Event:2");
// One Event holding one Summary.Value per (tag, value); each value is stored as a float (simple_value).
std::string encode_scalar_event(double wall_time, int64_t step,
                                const std::vector<std::pair<std::string, double>>& values);
// colorspace: 1 grayscale, 2 grayscale + alpha, 3 RGB, 4 RGBA (the channel count for PNG).
std::string encode_image_event(double wall_time, int64_t step, const std::string& tag,
                               const std::string& encoded_image, int height, int width, int colorspace);

// Seconds since the Unix epoch, with the fraction, as TensorBoard's wall_time.
double unix_time_now();

// Appends events to a new file DIR/events.out.tfevents.<unix seconds>.<hostname>.<pid><suffix>. The file is
// created exclusively and opened for append: an existing file is never truncated or written into; if the name is
// taken (a second writer in the same second), ".<k>" is added before the suffix, k = 1, 2, ...
class EventWriter {
 public:
  // Creates dir if needed and writes the first event, file_version "brain.Event:2".
  explicit EventWriter(const std::string& dir, const std::string& suffix = "");
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  EventWriter(EventWriter&& other) noexcept;
  EventWriter& operator=(EventWriter&& other) noexcept;

  // wall_time < 0 means now.
  void add_scalar(const std::string& tag, int64_t step, double value, double wall_time = -1);
  // One Event with several values at the same step.
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values, double wall_time = -1);
  // png_bytes: an encoded PNG of height x width with channels 1..4 (the colorspace).
  void add_image(const std::string& tag, int64_t step, const std::string& png_bytes, int height, int width,
                 int channels, double wall_time = -1);
  // fsync: what was added survives a machine crash too.
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  void close() noexcept;

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;  // bytes of whole records in the file
};

}  // namespace ddpm
