// test_tensorboard.cpp — the TensorBoard event writer against a reader written here from the formats alone
// (bitwise CRC32C, TFRecord splitter, minimal protobuf decoder), sharing no code with the writer. No LibTorch.
#include "ddpm/io/tensorboard.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <type_traits>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {

// ---- independent reader --------------------------------------------------------------------------------------

uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : s) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}
uint32_t mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

uint64_t le(const std::string& s, size_t off, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<unsigned char>(s[off + i])) << (8 * i);
  return v;
}

struct Records {
  std::vector<std::string> payloads;
  bool torn = false;     // the file ends inside a record
  bool corrupt = false;  // a CRC did not match (reading stopped there)
};

Records split_records(const std::string& file) {
  Records r;
  size_t off = 0;
  while (off < file.size()) {
    if (file.size() - off < 12) return r.torn = true, r;
    const std::string len_bytes = file.substr(off, 8);
    if (mask(crc32c_bitwise(len_bytes)) != le(file, off + 8, 4)) return r.corrupt = true, r;
    const uint64_t n = le(file, off, 8);
    if (file.size() - off - 12 < n + 4) return r.torn = true, r;
    std::string payload = file.substr(off + 12, n);
    if (mask(crc32c_bitwise(payload)) != le(file, off + 12 + n, 4)) return r.corrupt = true, r;
    r.payloads.push_back(std::move(payload));
    off += 12 + n + 4;
  }
  return r;
}

// A protobuf field: varint / fixed64 / fixed32 in `num`, length-delimited in `bytes`.
struct Field {
  int wire = 0;
  uint64_t num = 0;
  std::string bytes;
};
std::multimap<int, Field> decode_message(const std::string& s) {
  std::multimap<int, Field> out;
  size_t i = 0;
  auto varint = [&]() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (i >= s.size() || shift > 63) throw std::runtime_error("bad varint");
      const auto b = static_cast<unsigned char>(s[i++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < s.size()) {
    const uint64_t key = varint();
    Field f;
    f.wire = int(key & 7);
    if (f.wire == 0) {
      f.num = varint();
    } else if (f.wire == 1 || f.wire == 5) {
      const int n = f.wire == 1 ? 8 : 4;
      if (i + n > s.size()) throw std::runtime_error("truncated fixed field");
      f.num = le(s, i, n);
      i += n;
    } else if (f.wire == 2) {
      const uint64_t n = varint();
      if (n > s.size() - i) throw std::runtime_error("truncated bytes field");
      f.bytes = s.substr(i, n);
      i += n;
    } else {
      throw std::runtime_error("unexpected wire type");
    }
    out.emplace(int(key >> 3), std::move(f));
  }
  return out;
}

struct Image {
  int64_t height = 0, width = 0, colorspace = 0;
  std::string encoded;
};
struct Value {
  std::string tag;
  bool has_simple = false, has_image = false;
  float simple = 0;
  Image image;
};
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  bool has_summary = false;
  std::vector<Value> values;
};

Event decode_event(const std::string& payload) {
  Event e;
  for (const auto& [num, f] : decode_message(payload)) {
    if (num == 1 && f.wire == 1) std::memcpy(&e.wall_time, &f.num, 8);
    if (num == 2 && f.wire == 0) e.step = static_cast<int64_t>(f.num);
    if (num == 3 && f.wire == 2) e.file_version = f.bytes;
    if (num == 5 && f.wire == 2) {
      e.has_summary = true;
      for (const auto& [vn, vf] : decode_message(f.bytes)) {
        if (vn != 1 || vf.wire != 2) continue;
        Value v;
        for (const auto& [n2, f2] : decode_message(vf.bytes)) {
          if (n2 == 1 && f2.wire == 2) v.tag = f2.bytes;
          if (n2 == 2 && f2.wire == 5) {
            const auto bits = static_cast<uint32_t>(f2.num);
            std::memcpy(&v.simple, &bits, 4);
            v.has_simple = true;
          }
          if (n2 == 4 && f2.wire == 2) {
            v.has_image = true;
            for (const auto& [n3, f3] : decode_message(f2.bytes)) {
              if (n3 == 1) v.image.height = static_cast<int64_t>(f3.num);
              if (n3 == 2) v.image.width = static_cast<int64_t>(f3.num);
              if (n3 == 3) v.image.colorspace = static_cast<int64_t>(f3.num);
              if (n3 == 4) v.image.encoded = f3.bytes;
            }
          }
        }
        e.values.push_back(v);
      }
    }
  }
  return e;
}

// ---- helpers ---------------------------------------------------------------------------------------------------

std::string tmp_dir(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : "/tmp") / "tensorboard" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
std::vector<Event> read_events(const std::string& path) {
  const Records r = split_records(slurp(path));
  EXPECT_FALSE(r.torn);
  EXPECT_FALSE(r.corrupt);
  std::vector<Event> out;
  for (const auto& p : r.payloads) out.push_back(decode_event(p));
  return out;
}
// Bytes that look like a PNG and hold every byte value, NULs and 0xff included.
std::string fake_png() {
  std::string s("\x89PNG\r\n\x1a\n", 8);
  for (int i = 0; i < 600; ++i) s.push_back(static_cast<char>((i * 37) & 0xff));
  return s;
}

// A writer with file_version, 3 scalar events, 1 image: 5 records.
std::string five_record_file(const std::string& name) {
  EventWriter w(tmp_dir(name));
  for (int s = 1; s <= 3; ++s) w.add_scalar("loss", s, 1.0 / s);
  w.add_image("samples", 3, fake_png(), 28, 28, 1);
  return w.path();
}

}  // namespace

// ---- CRC ---------------------------------------------------------------------------------------------------------

TEST(Crc32c, KnownVectors) {
  const std::string check = "123456789", zeros(32, '\0'), ones(32, '\xff');
  std::string up, down;
  for (int i = 0; i < 32; ++i) up.push_back(char(i)), down.push_back(char(31 - i));
  const std::pair<std::string, uint32_t> vectors[] = {
      {check, 0xE3069283u}, {zeros, 0x8A9136AAu}, {ones, 0x62A8AB43u},  // RFC 3720 B.4 and the check value
      {up, 0x46DD794Eu},    {down, 0x113FDB5Cu},  {"", 0u}};
  for (const auto& [data, want] : vectors) {
    EXPECT_EQ(crc32c(data.data(), data.size()), want) << data.size() << " bytes";
    EXPECT_EQ(crc32c_bitwise(data), want) << data.size() << " bytes";
  }
}

TEST(Crc32c, ChainsAndMasks) {
  const std::string a = "hello, ", b = "tensorboard";
  EXPECT_EQ(crc32c(b.data(), b.size(), crc32c(a.data(), a.size())), crc32c_bitwise(a + b));
  EXPECT_EQ(masked_crc32c(b.data(), b.size()), mask(crc32c_bitwise(b)));
}

// ---- framing and encoding -----------------------------------------------------------------------------------------

TEST(TfRecord, FrameLayout) {
  const std::string payload("ab\0c", 4);
  const std::string rec = tfrecord_frame(payload);
  ASSERT_EQ(rec.size(), 8 + 4 + 4 + 4u);
  EXPECT_EQ(le(rec, 0, 8), 4u);
  EXPECT_EQ(le(rec, 8, 4), mask(crc32c_bitwise(rec.substr(0, 8))));
  EXPECT_EQ(rec.substr(12, 4), payload);
  EXPECT_EQ(le(rec, 16, 4), mask(crc32c_bitwise(payload)));
  const Records r = split_records(tfrecord_frame("") + rec);
  ASSERT_EQ(r.payloads.size(), 2u);
  EXPECT_EQ(r.payloads[0], "");
  EXPECT_EQ(r.payloads[1], payload);
}

TEST(Protobuf, ScalarEventGoldenBytes) {
  // Event{wall_time: 1.5, step: 3, summary{value{tag: "a", simple_value: 2}}}, encoded by hand from the .proto.
  const std::string want("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f"  // 1: fixed64 1.5
                         "\x10\x03"                              // 2: varint 3
                         "\x2a\x0a"                              // 5: Summary, 10 bytes
                         "\x0a\x08"                              //   1: Value, 8 bytes
                         "\x0a\x01" "a"                          //     1: tag
                         "\x15\x00\x00\x00\x40",                 //     2: fixed32 2.0f
                         23);
  EXPECT_EQ(encode_scalar_event(1.5, 3, {{"a", 2.0}}), want);
}

TEST(Protobuf, NegativeAndLargeStepsAndZeroValue) {
  for (int64_t step : {int64_t(0), int64_t(-1), int64_t(1) << 40, INT64_MAX, INT64_MIN}) {
    const Event e = decode_event(encode_scalar_event(7.25, step, {{"z", 0.0}}));
    EXPECT_EQ(e.step, step);
    EXPECT_EQ(e.wall_time, 7.25);
    ASSERT_EQ(e.values.size(), 1u);
    EXPECT_TRUE(e.values[0].has_simple);  // a oneof member: present even when 0
    EXPECT_EQ(e.values[0].simple, 0.0f);
  }
}

// ---- the writer ---------------------------------------------------------------------------------------------------

TEST(EventWriter, FileVersionFirstAndFileName) {
  const std::string dir = tmp_dir("version");
  std::string path;
  {
    EventWriter w(dir, ".ddpm");
    path = w.path();
  }
  const std::string name = fs::path(path).filename().string();
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir));
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_NE(name.find("." + std::to_string(getpid()) + ".ddpm"), std::string::npos) << name;
  const auto events = read_events(path);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_FALSE(events[0].has_summary);
  EXPECT_GT(events[0].wall_time, 1.6e9);
}

TEST(EventWriter, ScalarsRoundTrip) {
  const std::string dir = tmp_dir("scalars");
  EventWriter w(dir);
  const double vals[] = {0.1, -3.75, 1e-8, 123456.789, 0.0};
  for (int s = 0; s < 5; ++s)
    w.add_scalars(100 * s, {{"train/loss", vals[s]}, {"train/lr", vals[s] * 2}, {"grad_norm", -vals[s]}},
                  1.7e9 + s);
  w.add_scalar("eval/fid", 9, 42.5);
  const auto events = read_events(w.path());
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  for (int s = 0; s < 5; ++s) {
    const Event& e = events[1 + s];
    EXPECT_EQ(e.step, 100 * s);
    EXPECT_EQ(e.wall_time, 1.7e9 + s);
    ASSERT_EQ(e.values.size(), 3u);
    EXPECT_EQ(e.values[0].tag, "train/loss");
    EXPECT_EQ(e.values[1].tag, "train/lr");
    EXPECT_EQ(e.values[2].tag, "grad_norm");
    EXPECT_EQ(e.values[0].simple, static_cast<float>(vals[s]));
    EXPECT_EQ(e.values[1].simple, static_cast<float>(vals[s] * 2));
    EXPECT_EQ(e.values[2].simple, static_cast<float>(-vals[s]));
  }
  ASSERT_EQ(events[6].values.size(), 1u);
  EXPECT_EQ(events[6].values[0].tag, "eval/fid");
  EXPECT_EQ(events[6].values[0].simple, 42.5f);
  EXPECT_EQ(events[6].step, 9);
  EXPECT_GE(events[6].wall_time, events[0].wall_time);  // -1 means now
}

TEST(EventWriter, ImageRoundTrip) {
  EventWriter w(tmp_dir("image"));
  const std::string png = fake_png();
  w.add_image("samples/grid", 500, png, 64, 48, 3);
  w.add_image("samples/gray", 501, png.substr(0, 100), 28, 28, 1);
  w.add_image("samples/rgba", 502, png, 2, 3, 4);
  const auto events = read_events(w.path());
  ASSERT_EQ(events.size(), 4u);
  const struct { const char* tag; int64_t step, h, w, cs; std::string bytes; } want[] = {
      {"samples/grid", 500, 64, 48, 3, png}, {"samples/gray", 501, 28, 28, 1, png.substr(0, 100)},
      {"samples/rgba", 502, 2, 3, 4, png}};
  for (int i = 0; i < 3; ++i) {
    const Event& e = events[1 + i];
    EXPECT_EQ(e.step, want[i].step);
    ASSERT_EQ(e.values.size(), 1u);
    const Value& v = e.values[0];
    EXPECT_EQ(v.tag, want[i].tag);
    ASSERT_TRUE(v.has_image);
    EXPECT_FALSE(v.has_simple);
    EXPECT_EQ(v.image.height, want[i].h);
    EXPECT_EQ(v.image.width, want[i].w);
    EXPECT_EQ(v.image.colorspace, want[i].cs);
    EXPECT_EQ(v.image.encoded, want[i].bytes);  // byte-exact
  }
  EXPECT_THROW(w.add_image("bad", 1, png, 0, 4, 3), std::runtime_error);
  EXPECT_THROW(w.add_image("bad", 1, png, 4, 4, 5), std::runtime_error);
  EXPECT_EQ(read_events(w.path()).size(), 4u);  // a refused image writes nothing
}

TEST(EventWriter, TornTailKeepsEarlierRecords) {
  const std::string path = five_record_file("torn");
  const std::string full = slurp(path);
  const Records whole = split_records(full);
  ASSERT_EQ(whole.payloads.size(), 5u);
  const size_t last = full.size() - (16 + whole.payloads[4].size());
  // Every cut inside the last record: the first four survive, the tail is flagged torn, not corrupt.
  for (size_t cut = last + 1; cut < full.size(); ++cut) {
    const Records r = split_records(full.substr(0, cut));
    ASSERT_EQ(r.payloads.size(), 4u) << "cut at " << cut;
    EXPECT_TRUE(r.torn) << "cut at " << cut;
    EXPECT_FALSE(r.corrupt) << "cut at " << cut;
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(r.payloads[i], whole.payloads[i]);
  }
  spit(path, full.substr(0, full.size() - 3));  // as a file on disk, too
  const Records r = split_records(slurp(path));
  EXPECT_EQ(r.payloads.size(), 4u);
  EXPECT_TRUE(r.torn);
  EXPECT_EQ(decode_event(r.payloads[3]).step, 3);
}

TEST(EventWriter, CorruptByteIsDetected) {
  const std::string full = slurp(five_record_file("corrupt"));
  const Records whole = split_records(full);
  ASSERT_EQ(whole.payloads.size(), 5u);
  const size_t second = 16 + whole.payloads[0].size();  // offset of record 2
  for (size_t at : {second + 0, second + 9, second + 12, second + 12 + whole.payloads[1].size() + 1}) {
    std::string bad = full;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    const Records r = split_records(bad);
    EXPECT_TRUE(r.corrupt) << "byte " << at;
    EXPECT_EQ(r.payloads.size(), 1u) << "byte " << at;
  }
}

TEST(EventWriter, SecondWriterMakesNewFileAndNeverTouchesTheFirst) {
  const std::string dir = tmp_dir("append");
  EventWriter a(dir);
  a.add_scalar("x", 1, 1.0);
  const std::string before = slurp(a.path());
  EventWriter b(dir);  // same second, same pid: a ".1" name
  b.add_scalar("x", 2, 2.0);
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(slurp(a.path()), before);
  a.add_scalar("x", 3, 3.0);
  EXPECT_EQ(read_events(a.path()).size(), 3u);
  const auto eb = read_events(b.path());
  ASSERT_EQ(eb.size(), 2u);
  EXPECT_EQ(eb[0].file_version, "brain.Event:2");
  EXPECT_EQ(eb[1].step, 2);
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.is_regular_file();
  EXPECT_EQ(files, 2u);
}

TEST(EventWriter, UnwritableDirThrowsNamingThePath) {
  // A directory below a regular file cannot be created, even as root (permission bits would not stop root).
  const std::string base = tmp_dir("unwritable");
  spit(base + "/file", "x");
  const std::string dir = base + "/file/run";
  try {
    EventWriter w(dir);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
  }
}

TEST(EventWriter, FailedWriteThrowsAndLeavesNoTornRecord) {
  // A file-size limit stands in for a full disk: write(2) fails with EFBIG part-way through the record.
  EventWriter w(tmp_dir("full"));
  w.add_scalar("x", 1, 1.0);
  const auto size = fs::file_size(w.path());
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = size + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string what;
  try {
    w.add_image("big", 2, fake_png(), 8, 8, 3);
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_NE(what.find(w.path()), std::string::npos) << what;
  EXPECT_EQ(fs::file_size(w.path()), size);  // the partial record was cut off again
  w.add_scalar("x", 3, 3.0);
  const auto events = read_events(w.path());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].step, 3);
}

TEST(EventWriter, MovableNotCopyable) {
  static_assert(!std::is_copy_constructible_v<EventWriter>);
  static_assert(!std::is_copy_assignable_v<EventWriter>);
  static_assert(std::is_nothrow_move_constructible_v<EventWriter>);
  const std::string dir = tmp_dir("move");
  EventWriter a(dir);
  EventWriter b(std::move(a));
  b.add_scalar("m", 1, 1.0);
  EXPECT_THROW(a.add_scalar("m", 2, 2.0), std::runtime_error);  // NOLINT(bugprone-use-after-move): moved-from
  auto held = std::make_unique<EventWriter>(std::move(b));
  held->add_scalar("m", 3, 3.0);
  held->flush();
  const auto events = read_events(held->path());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].step, 3);
}
