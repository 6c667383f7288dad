// test_reliability.cpp — issue 6, "nothing lost": one malformed input per rejection rule of every reader
// (safetensors, IDX, CIFAR-10, images, TOML), each with its error; the CIFAR-10 reader on files in the official
// layout; crash-safe run files (numbered checkpoints, stale temporaries, metrics after a resume); a write that
// fails for lack of space (RLIMIT_FSIZE); the non-finite guard with injected NaN; exact resume through run().
#include "ddpm/data/cifar10.h"
#include "ddpm/data/data.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/formats/cifar10.h"
#include "ddpm/io/formats/idx.h"
#include "ddpm/io/formats/safetensors_layout.h"
#include "ddpm/io/formats/toml_text.h"
#include "ddpm/io/image_io.h"
#include "ddpm/io/run_files.h"
#include "ddpm/train/fault_injection.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/config.h"
#include "ddpm/util/runtime.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <zlib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {

std::string tmp_dir(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : fs::temp_directory_path().string()) / "reliability" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// The message of the std::runtime_error `f` throws ("" if it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR(expr, substr)                                                                    \
  do {                                                                                                \
    const std::string msg_ = error_of([&] { (void)(expr); });                                         \
    EXPECT_NE(msg_.find(substr), std::string::npos) << "expected '" << (substr) << "', got '" << msg_ << "'"; \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << "error is not one line: " << msg_;            \
  } while (0)

std::string st_file(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}

std::string be32(uint32_t v) { return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)}; }

// A CIFAR-10 record: label, then 3072 CHW bytes with a pattern that depends on (seed, position).
std::string cifar_record(int label, int seed) {
  std::string r(1, static_cast<char>(label));
  for (int i = 0; i < 3072; ++i) r.push_back(static_cast<char>((i * 31 + seed * 7) % 251));
  return r;
}

// 8×8 bars, uint8 [n,1,8,8], and a micro UNet for them (fast steps; dropout on, so its draws are covered too).
Dataset shapes(int64_t n) {
  auto yy = torch::arange(8).view({8, 1}).expand({8, 8}).to(torch::kFloat32);
  std::vector<torch::Tensor> imgs;
  for (int64_t i = 0; i < n; ++i) imgs.push_back(((yy - i).abs() < 2).to(torch::kUInt8).mul(255).unsqueeze(0));
  Dataset d;
  d.name = "bars";
  d.images = torch::stack(imgs);
  return d;
}

Config tiny(const std::string& out) {
  set_threads(1);  // bit-identity holds for a fixed thread count; 1 keeps the shared 2-core machine usable
  Config c;
  c.preset = "tiny";
  c.model = ModelConfig{8, 1, 32, {1, 2}, 1, {}, 0.1};
  c.train.batch_size = 4;
  c.train.lr = 2e-3;
  c.train.warmup = 2;
  c.train.ema_decay = 0.9;
  c.train.seed = 11;
  c.train.out = out;
  c.train.log_every = 1;
  c.train.save_every = 2;
  c.train.sample_every = 0;
  c.train.sample_num = 1;
  c.train.sample_steps = 2;
  return c;
}

}  // namespace

// ---- safetensors: one malformed file per rule, each with its own error ---------------------------------------

TEST(MalformedSafetensors, EachRuleHasItsError) {
  const std::string d8(8, '\0');
  const std::string f32_2 = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    const char* rule;
    std::string bytes;
    const char* error;
  };
  std::string too_long = st_file("{}", "");
  too_long[0] = '\x7f';
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", std::string("\x01\x02", 2), "shorter than the 8-byte header length"},
      {"header length > file", too_long, "is larger than the file"},
      {"header length > 100 MB", std::string("\x00\x00\x00\x10\x00\x00\x00\x00", 8) + "{}", "exceeds the 100 MB bound"},
      {"invalid JSON", st_file(R"({"a": [)", d8), "header is not valid JSON"},
      {"invalid UTF-8", st_file("{\"\xff\":1}", ""), "header is not valid JSON"},
      {"not an object", st_file("[1,2]", ""), "header is not a JSON object"},
      {"unknown dtype", st_file(R"({"a":{"dtype":"F8X","shape":[2],"data_offsets":[0,8]}})", d8), "unknown dtype 'F8X'"},
      {"non-string dtype", st_file(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", d8), "non-string dtype"},
      {"missing fields", st_file(R"({"a":{"dtype":"F32"}})", ""), "lacks dtype, shape or data_offsets"},
      {"negative dimension", st_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8), "negative or non-integer"},
      {"absurd shape", st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", d8), "absurd shape"},
      {"shape bytes != range", st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8), "does not match its shape and dtype"},
      {"offsets not integers", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", d8), "not two unsigned integers"},
      {"offsets reversed", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8), "begin > end"},
      {"offsets out of range", st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8), "past the 8-byte data section"},
      {"overlapping ranges", st_file(R"({"a":)" + f32_2 + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8), "overlaps another"},
      {"non-contiguous ranges", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8), "leaving a gap"},
      {"trailing bytes", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8), "4 trailing bytes"},
      {"duplicate names", st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8),
       "duplicate name 'a'"},
      {"duplicate names, same range", st_file(R"({"a":)" + f32_2 + R"(,"a":)" + f32_2 + "}", d8), "duplicate name 'a'"},
      {"duplicate metadata", st_file(R"({"__metadata__":{"k":"1","k":"2"}})", ""), "duplicate name 'k'"},
      {"metadata not strings", st_file(R"({"__metadata__":{"step":3}})", ""), "is not a string"},
      {"absurd nesting", st_file(std::string(100, '[') + std::string(100, ']'), ""), "nests deeper than"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.rule);
    EXPECT_ERROR(safetensors_parse(c.bytes, "bad.safetensors"), c.error);
    EXPECT_EQ(error_of([&] { safetensors_parse(c.bytes, "bad.safetensors"); })
                  .rfind("bad.safetensors: not a valid safetensors file: ", 0), 0u);
  }
  // A valid file with zero-size and scalar tensors passes the same rules.
  const auto ok = st_file(R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"t":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", d8);
  const auto lay = parse_safetensors_layout(ok.data(), ok.size(), "ok");
  EXPECT_EQ(lay.entries.size(), 3u);
  EXPECT_EQ(safetensors_parse(ok, "ok").tensors.size(), 3u);
}

TEST(MalformedSafetensors, TheSeedCorpusIsRejectedOrAcceptedAsNamed) {
  // fuzz/corpus/safetensors: files named bad_* must be rejected, the others accepted.
  const fs::path dir = fs::path(DDPM_SOURCE_DIR) / "fuzz" / "corpus" / "safetensors";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto bytes = read_all(e.path().string());
    const bool bad = e.path().filename().string().rfind("bad_", 0) == 0;
    const std::string msg = error_of([&] { safetensors_parse(bytes, e.path().string()); });
    EXPECT_EQ(!msg.empty(), bad) << e.path() << ": " << msg;
    ++n;
  }
  EXPECT_GE(n, 10);
}

// ---- IDX --------------------------------------------------------------------------------------------------

TEST(MalformedIdx, EachRuleHasItsError) {
  const auto dir = tmp_dir("idx");
  auto images = [](uint32_t magic, uint32_t n, uint32_t h, uint32_t w, size_t pixels) {
    return be32(magic) + be32(n) + be32(h) + be32(w) + std::string(pixels, '\x07');
  };
  struct Case {
    const char* rule;
    std::string bytes;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"too short", std::string(10, '\0'), "too short for an IDX image file (10 bytes)"},
      {"wrong magic", images(0x801, 1, 2, 2, 4), "wrong magic number for IDX images"},
      {"zero height", images(0x803, 1, 0, 2, 0), "implausible image size 0x2"},
      {"huge width", images(0x803, 1, 2, 100000, 0), "implausible image size 2x100000"},
      {"truncated pixels", images(0x803, 3, 2, 2, 11), "size mismatch: header says 3 images of 2x2 (28 bytes) but the file has 27"},
      {"trailing bytes", images(0x803, 1, 2, 2, 5), "size mismatch"},
      {"4 billion images claimed", images(0x803, 0xffffffffu, 4096, 4096, 4), "size mismatch"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.rule);
    write(dir + "/f", c.bytes);
    EXPECT_ERROR(read_idx_images(dir + "/f"), dir + "/f: " + c.error);
  }
  write(dir + "/l", be32(0x803) + be32(2) + "\x01");
  EXPECT_ERROR(read_idx_labels(dir + "/l"), "wrong magic number for IDX labels");
  write(dir + "/l", be32(0x801) + be32(3) + "\x01");
  EXPECT_ERROR(read_idx_labels(dir + "/l"), "header says 3 labels but the file has 1 label bytes");
  write(dir + "/l", "\x00\x00");
  EXPECT_ERROR(read_idx_labels(dir + "/l"), "too short for an IDX label file");
  // gzip: corrupt and truncated streams; a stream inflating past the bound.
  write(dir + "/g", std::string("\x1f\x8b\x08\x00garbagegarbage", 18));
  EXPECT_ERROR(read_idx_images(dir + "/g"), "corrupt gzip data");
  std::string zeros(1 << 20, '\0');
  uLongf len = compressBound(zeros.size());
  std::string z(len, '\0');
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(&z[0]), &len, reinterpret_cast<const Bytef*>(zeros.data()), zeros.size()), Z_OK);
  z.resize(len);
  EXPECT_ERROR(gunzip(z, "bomb", 1000), "bomb: gzip data inflates past 1000 bytes");
  EXPECT_ERROR(gunzip(z.substr(0, z.size() / 2), "cut"), "cut: truncated gzip data");
}

// ---- CIFAR-10 ---------------------------------------------------------------------------------------------

TEST(Cifar10, ReadsTheOfficialLayout) {
  const auto dir = tmp_dir("cifar");
  std::string test;
  for (int i = 0; i < 10000; ++i) test += cifar_record(i % 10, i);
  write(dir + "/test_batch.bin", test);
  for (int f = 1; f <= 5; ++f) {
    std::string b;
    for (int i = 0; i < 10000; ++i) b += cifar_record((i + f) % 10, f * 10000 + i);
    write(dir + "/data_batch_" + std::to_string(f) + ".bin", b);
  }
  auto t = load_dataset("cifar10:" + dir + "@test");
  EXPECT_EQ(t.images.sizes(), (std::vector<int64_t>{10000, 3, 32, 32}));
  EXPECT_EQ(t.labels.scalar_type(), torch::kLong);
  EXPECT_EQ(t.labels[7].item<int64_t>(), 7);
  // Record 123: channel c, row y, column x is byte 1 + c·1024 + y·32 + x of the record (CHW).
  const auto rec = cifar_record(3, 123);
  for (auto [c, y, x] : {std::tuple<int, int, int>{0, 0, 0}, {1, 5, 9}, {2, 31, 31}})
    EXPECT_EQ(t.images[123][c][y][x].item<int>(), static_cast<unsigned char>(rec[1 + c * 1024 + y * 32 + x]));

  auto tr = load_dataset("cifar10:" + dir);  // train by default: data_batch_1..5 in order
  EXPECT_EQ(tr.size(), 50000);
  EXPECT_EQ(tr.labels[0].item<int64_t>(), 1);            // file 1, record 0
  EXPECT_EQ(tr.labels[40001].item<int64_t>(), (1 + 5) % 10);  // file 5, record 1
  const auto rec2 = cifar_record((5 + 2) % 10, 2 * 10000 + 5);
  EXPECT_EQ(tr.images[10005][2][3][4].item<int>(), static_cast<unsigned char>(rec2[1 + 2 * 1024 + 3 * 32 + 4]));

  // Errors name the file and what is wrong.
  EXPECT_ERROR(load_dataset("cifar10:" + dir + "/nope"), "is not a directory");
  EXPECT_ERROR(load_dataset("cifar10"), "cifar10 needs a directory");
  const auto bad = tmp_dir("cifar-bad");
  write(bad + "/test_batch.bin", test.substr(0, test.size() - 1));
  EXPECT_ERROR(load_dataset("cifar10:" + bad + "@test"),
               bad + "/test_batch.bin: not a CIFAR-10 binary batch: 30729999 bytes, expected 30730000 (10000 records of 3073 bytes)");
  test[5 * 3073] = 10;
  write(bad + "/test_batch.bin", test);
  EXPECT_ERROR(load_dataset("cifar10:" + bad + "@test"), bad + "/test_batch.bin: record 5 has label 10 (CIFAR-10 labels are 0..9)");
  EXPECT_ERROR(load_dataset("cifar10:" + bad), "missing " + bad + "/data_batch_1.bin");
  EXPECT_ERROR(load_dataset("cifar10:" + bad + "@val"), "unknown split 'val'");
}

// ---- images -----------------------------------------------------------------------------------------------

TEST(MalformedImage, EachKindHasItsError) {
  const auto dir = tmp_dir("img");
  save_png(dir + "/ok.png", torch::full({1, 4, 4}, 200, torch::kUInt8));
  EXPECT_EQ(load_image(dir + "/ok.png").sizes(), (std::vector<int64_t>{1, 4, 4}));
  const auto png = read_all(dir + "/ok.png");
  write(dir + "/empty.png", "");
  EXPECT_ERROR(load_image(dir + "/empty.png"), dir + "/empty.png: cannot read image");
  write(dir + "/text.png", "this is not an image at all");
  EXPECT_ERROR(load_image(dir + "/text.png"), "cannot read image");
  write(dir + "/cut.png", png.substr(0, png.size() / 2));
  EXPECT_ERROR(load_image(dir + "/cut.png"), "cannot read image");
  // IHDR claiming 20000 x 20000 pixels (400 MB): refused from the header, before decoding allocates anything.
  // (stb itself refuses headers beyond 2^30 bytes: "cannot read image".)
  auto huge = png;
  huge.replace(16, 8, be32(20000) + be32(20000));
  write(dir + "/huge.png", huge);
  EXPECT_ERROR(load_image(dir + "/huge.png"), "image of 20000x20000 pixels is larger than the 16384-pixel side limit");
  huge.replace(16, 8, be32(100000) + be32(100000));
  write(dir + "/huge.png", huge);
  EXPECT_ERROR(load_image(dir + "/huge.png"), "cannot read image");
  EXPECT_ERROR(load_image(dir + "/missing.png"), "cannot read image");
}

// ---- TOML config ------------------------------------------------------------------------------------------

TEST(MalformedConfig, EachKindHasItsError) {
  struct Case {
    std::string text;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"[train\nsteps = 1\n", "bad.toml:1: "},                       // syntax error, with the line
      {"[train]\nsteps = 1\nsteps = 2\n", "bad.toml:3: "},            // duplicate key (toml++ rejects)
      {"[train]\nbogus = 1\n", "unknown key 'train.bogus'"},
      {"bogus = 1\n", "unknown key 'bogus'"},
      {"train = 3\n", "'train' must be a table"},
      {"[model]\nch = \"wide\"\n", "model.ch: expected an integer"},
      {"[model]\nch_mult = [1, \"2\"]\n", "model.ch_mult: expected an array of integers"},
      {"[train]\nflip = 1\n", "train.flip: expected true or false"},
      {"[train]\nseed = -1\n", "train.seed: expected a non-negative integer"},
      {"preset = \"huge\"\n", "unknown preset 'huge'"},
      {"[train]\nkeep_checkpoints = 1.5\n", "train.keep_checkpoints: expected an integer"},
      {"[train]\nlr = \"x\"\n", "train.lr: expected a number"},
      {"\xff\xfe[train]\n", "bad.toml:1: invalid UTF-8"},
      {"[train]\ndata = \"caf\xc3\"\n", "bad.toml:2: invalid UTF-8"},
      // Found by fuzzing: toml++ 3.3 reaches undefined behaviour on U+02BF after a value; never given to it.
      {"[train]\nsteps = 100 \xca\xbf\n", "bad.toml:2: non-ASCII character outside a string or comment"},
      {"[train]\n\xc3\xa9 = 1\n", "bad.toml:2: non-ASCII character outside a string or comment"},
      {std::string("[train]\nsteps = 1\0\n", 19), "bad.toml:2: control character 0x00"},
      {"# ok\n[train]\ndata = \"a\x01" "b\"\n", "bad.toml:3: control character 0x01"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    Config cfg;
    EXPECT_ERROR(apply_toml_string(cfg, c.text, "bad.toml"), c.error);
  }
  // Non-ASCII is fine in basic strings (given to toml++ as \u escapes: the same string) and comments.
  Config ok;
  apply_toml_string(ok,
                    "# caf\xc3\xa9 \xca\xbf\n[train] # \xca\xbf\nout = \"runs/caf\xc3\xa9 \\\" \xca\xbf \xf0\x9f\x98\x80\"\n"
                    "data = \"\"\"d\xca\xbf\"\"\"\ndevice = '''cpu'''\n[diffusion]\nschedule = 'linear'\n",
                    "ok.toml");
  EXPECT_EQ(ok.train.out, "runs/caf\xc3\xa9 \" \xca\xbf \xf0\x9f\x98\x80");
  EXPECT_EQ(ok.train.data, "d\xca\xbf");
  EXPECT_EQ(ok.train.device, "cpu");
  EXPECT_EQ(toml_to_ascii("a = \"\xc3\xa9\" # \xc3\xa9\n", "x"), "a = \"\\u00E9\" # ?\n");
  // 'literal strings' become basic strings with the same content.
  EXPECT_EQ(toml_to_ascii("a = 'C:\\d\"\xc3\xa9'\nb = \'\'\'x\'\'\'\'\n", "x"),
            "a = \"C:\\\\d\\\"\\u00E9\"\nb = \"\"\"x\'\"\"\"\n");
  apply_toml_string(ok, "[train]\ndata = 'C:\\d\"\xc3\xa9'\nout = \'\'\'\nx\'\'\'\'\n", "lit.toml");
  EXPECT_EQ(ok.train.data, "C:\\d\"\xc3\xa9");
  EXPECT_EQ(ok.train.out, "x'");
  // The JSON config inside a checkpoint goes through the same checks (found by fuzzing: a float in an array).
  EXPECT_ERROR(config_from_json(nlohmann::json::parse(R"({"model": {"ch_mult": [1, 2e300]}})")),
               "config key 'model.ch_mult' is not an array of integers");
  EXPECT_ERROR(config_from_json(nlohmann::json::parse(R"({"train": {"bogus": 1}})")), "unknown key 'train.bogus'");
  // Values that parse but are impossible are caught by validate(), naming the field.
  for (const auto& [text, error] : std::vector<std::pair<std::string, std::string>>{
           {"[train]\nmax_nonfinite = -1\n", "train.max_nonfinite must be >= 0"},
           {"[train]\nkeep_checkpoints = -2\n", "train.keep_checkpoints must be >= 0"},
           {"[train]\nlr = nan\n", "train.lr must be positive"},
           {"[model]\nch = 48\n", "model.ch must be a positive multiple of 32"}}) {
    Config cfg;
    apply_toml_string(cfg, text, "x.toml");
    EXPECT_ERROR(validate(cfg), error);
  }
}

// ---- run files: numbered checkpoints, stale temporaries, metrics after a resume ----------------------------

TEST(RunFiles, KeepsTheLastKNumberedCheckpoints) {
  const auto dir = tmp_dir("keep");
  EXPECT_EQ(numbered_checkpoint_name(1000), "checkpoint-00001000.safetensors");
  EXPECT_EQ(numbered_checkpoint_name(123456789), "checkpoint-123456789.safetensors");
  for (int64_t s : {10, 20, 30, 40}) save_run_checkpoint(dir, s, "bytes of step " + std::to_string(s), 2);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-00000030.safetensors", "checkpoint-00000040.safetensors",
                                             "checkpoint.safetensors"}));
  EXPECT_EQ(read_all(dir + "/checkpoint.safetensors"), "bytes of step 40");
  EXPECT_EQ(read_all(dir + "/checkpoint-00000030.safetensors"), "bytes of step 30");
  // keep = 0: only checkpoint.safetensors is (re)written.
  const auto d0 = tmp_dir("keep0");
  save_run_checkpoint(d0, 5, "five", 0);
  EXPECT_EQ(std::distance(fs::directory_iterator(d0), fs::directory_iterator{}), 1);
}

TEST(RunFiles, RemovesOnlyTemporariesOfDeadProcesses) {
  const auto dir = tmp_dir("stale");
  // A pid that cannot exist (beyond pid_max) and our own pid.
  write(dir + "/checkpoint.safetensors.tmp.2147483000", "half");
  write(dir + "/checkpoint.safetensors.tmp." + std::to_string(::getpid()), "mine");
  write(dir + "/notes.txt", "keep");
  EXPECT_EQ(remove_stale_temp_files(dir), 1);
  EXPECT_FALSE(fs::exists(dir + "/checkpoint.safetensors.tmp.2147483000"));
  EXPECT_TRUE(fs::exists(dir + "/checkpoint.safetensors.tmp." + std::to_string(::getpid())));
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
}

TEST(RunFiles, TrimMetricsDropsRedoneStepsAndACutLine) {
  const auto dir = tmp_dir("metrics");
  const auto p = dir + "/metrics.jsonl";
  write(p, "{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":0.9}\n{\"step\":3,\"loss\":0.8}\n{\"step\":4,\"lo");
  trim_metrics(p, 2);
  EXPECT_EQ(read_all(p), "{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":0.9}\n");
  trim_metrics(p, 2);  // unchanged
  EXPECT_EQ(read_all(p), "{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":0.9}\n");
}

// ---- disk full: a failed write leaves the previous checkpoint and says why ---------------------------------

TEST(DiskFull, FailedWriteKeepsThePreviousCheckpoint) {
  const auto dir = tmp_dir("full");
  save_run_checkpoint(dir, 1, std::string(1000, 'a'), 2);
  const auto before = read_all(dir + "/checkpoint.safetensors");
  // Simulate a full disk: files may not grow past 64 KiB (write() fails with EFBIG; SIGXFSZ ignored).
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 64 << 10;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  const std::string msg = error_of([&] { save_run_checkpoint(dir, 2, std::string(1 << 20, 'b'), 2); });
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(msg.find("checkpoint-00000002.safetensors: write failed (File too large); the previous file is untouched"),
            std::string::npos) << msg;
  EXPECT_EQ(read_all(dir + "/checkpoint.safetensors"), before);
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-00000001.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoint-00000002.safetensors"));
  for (const auto& e : fs::directory_iterator(dir))  // no temporary left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

// ---- non-finite guard ---------------------------------------------------------------------------------------

TEST(NonFinite, PoisonedStepsAreSkippedAndLeaveTheWeights) {
  auto cfg = tiny(tmp_dir("nan-skip"));
  Trainer tr(cfg, shapes(4), torch::kCPU);
  tr.batch_hook = [](int64_t step, Trainer::Batch& b) {
    if (step == 2 || step == 3) b.x0.fill_(std::numeric_limits<float>::quiet_NaN());
  };
  EXPECT_FALSE(tr.train_step().skipped);
  EXPECT_FALSE(tr.train_step().skipped);
  std::vector<torch::Tensor> w, e;
  for (const auto& p : tr.model()->parameters()) w.push_back(p.clone());
  for (const auto& p : tr.ema()->parameters()) e.push_back(p.clone());
  for (int i = 0; i < 2; ++i) {
    auto s = tr.train_step();
    EXPECT_TRUE(s.skipped);
    EXPECT_FALSE(std::isfinite(s.loss));
  }
  auto pw = tr.model()->parameters(), pe = tr.ema()->parameters();
  for (size_t i = 0; i < pw.size(); ++i) {
    EXPECT_TRUE(torch::equal(pw[i], w[i]));
    EXPECT_TRUE(torch::equal(pe[i], e[i]));
  }
  auto s = tr.train_step();  // step 4 is clean again
  EXPECT_FALSE(s.skipped);
  EXPECT_TRUE(std::isfinite(s.loss));
  EXPECT_EQ(tr.step(), 5);
}

TEST(NonFinite, InfiniteGradientWithFiniteLossIsSkipped) {
  Trainer tr(tiny(tmp_dir("inf-grad")), shapes(4), torch::kCPU);
  // Poison one weight's gradient through a hook on the parameter: the loss stays finite, the norm does not.
  auto p = tr.model()->parameters()[3];
  p.register_hook([](torch::Tensor g) { return g.fill_(std::numeric_limits<float>::infinity()); });
  auto before = p.clone();
  auto s = tr.train_step();
  EXPECT_TRUE(std::isfinite(s.loss));
  EXPECT_FALSE(std::isfinite(s.grad_norm));
  EXPECT_TRUE(s.skipped);
  EXPECT_TRUE(torch::equal(before, p));
}

TEST(NonFinite, RunLogsSkipsAndStopsAfterTooManyInARow) {
  // Two poisoned steps: counted in metrics.jsonl and the log, the run goes on.
  auto cfg = tiny(tmp_dir("nan-run"));
  cfg.train.steps = 6;
  cfg.train.max_nonfinite = 3;
  Trainer tr(cfg, shapes(4), torch::kCPU);
  tr.batch_hook = [](int64_t step, Trainer::Batch& b) {
    if (step == 2 || step == 3) b.x0.fill_(std::numeric_limits<float>::quiet_NaN());
  };
  std::ostringstream log;
  TrainHooks hooks;
  hooks.log = &log;
  EXPECT_TRUE(tr.run(hooks));
  EXPECT_NE(log.str().find("step 4: non-finite loss (nan)"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("update skipped (2 in a row, 2 in this run)"), std::string::npos);
  EXPECT_NE(log.str().find("| skipped 2"), std::string::npos);
  std::ifstream m(cfg.train.out + "/metrics.jsonl");
  std::vector<nlohmann::json> rec;
  for (std::string l; std::getline(m, l);) rec.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(rec.size(), 6u);
  EXPECT_EQ(rec[2]["skipped"], 1);
  EXPECT_TRUE(rec[2]["loss"].is_null());
  EXPECT_EQ(rec[4]["skipped"], 0);
  EXPECT_TRUE(rec[4]["loss"].is_number());

  // Every step poisoned from step 3 on: stops at the third in a row, the step-2 checkpoint untouched.
  auto cfg2 = tiny(tmp_dir("nan-stop"));
  cfg2.train.steps = 10;
  cfg2.train.max_nonfinite = 3;
  Trainer tr2(cfg2, shapes(4), torch::kCPU);
  tr2.batch_hook = [](int64_t step, Trainer::Batch& b) {
    if (step >= 3) b.x0.fill_(std::numeric_limits<float>::quiet_NaN());
  };
  hooks.log = nullptr;
  const std::string ck = cfg2.train.out + "/checkpoint.safetensors";
  EXPECT_ERROR(tr2.run(hooks), "training stopped at step 6 after 3 non-finite losses or gradients in a row "
                               "(train.max_nonfinite); the last checkpoint (step 4) is " + ck);
  EXPECT_EQ(load_checkpoint(ck).step, 4);
}

TEST(NonFinite, NonFiniteWeightsAreNeverSaved) {
  const auto dir = tmp_dir("nan-save");
  auto cfg = tiny(dir);
  Trainer tr(cfg, shapes(4), torch::kCPU);
  tr.train_step();
  tr.save(dir + "/checkpoint.safetensors");
  const auto before = read_all(dir + "/checkpoint.safetensors");
  {
    torch::NoGradGuard ng;
    tr.ema()->parameters()[5].view(-1)[0] = std::numeric_limits<float>::infinity();
  }
  EXPECT_ERROR(tr.save(dir + "/checkpoint.safetensors"),
               "refusing to write " + dir + "/checkpoint.safetensors: tensor 'ema.");
  EXPECT_EQ(read_all(dir + "/checkpoint.safetensors"), before);
  EXPECT_EQ(parse_step_ranges("3-5,9"), (std::vector<std::pair<int64_t, int64_t>>{{3, 5}, {9, 9}}));
  EXPECT_THROW(parse_step_ranges("5-3"), std::runtime_error);
}

// ---- exact resume through run(): 2N steps in one go == N, stop, resume, N more --------------------------------

TEST(ExactResume, RunStoppedAndResumedEqualsOneRun) {
  const int64_t N = 3;
  auto make = [&](const std::string& out) {
    auto c = tiny(out);
    c.train.flip = true;  // flips too (dropout is on in the micro model)
    c.train.steps = 2 * N;
    c.train.save_every = 0;
    return c;
  };
  const auto a = tmp_dir("resume-straight"), b = tmp_dir("resume-split");
  TrainHooks hooks;
  Trainer straight(make(a), shapes(5), torch::kCPU);
  ASSERT_TRUE(straight.run(hooks));

  auto half = make(b);
  half.train.steps = N;
  Trainer first(half, shapes(5), torch::kCPU);
  ASSERT_TRUE(first.run(hooks));
  Trainer second(make(b), shapes(5), torch::kCPU);
  second.load(b + "/checkpoint.safetensors");
  ASSERT_TRUE(second.run(hooks));

  auto ca = load_checkpoint(a + "/checkpoint.safetensors"), cb = load_checkpoint(b + "/checkpoint.safetensors");
  EXPECT_EQ(ca.step, 2 * N);
  EXPECT_EQ(cb.step, 2 * N);
  ASSERT_EQ(ca.st.tensors.size(), cb.st.tensors.size());
  for (size_t i = 0; i < ca.st.tensors.size(); ++i) {  // model, EMA and both Adam moments, bit for bit
    EXPECT_EQ(ca.st.tensors[i].first, cb.st.tensors[i].first);
    EXPECT_TRUE(torch::equal(ca.st.tensors[i].second, cb.st.tensors[i].second)) << ca.st.tensors[i].first;
  }
  EXPECT_EQ(ca.st.metadata.at("optim_step"), cb.st.metadata.at("optim_step"));
  // metrics.jsonl: the same records (timings aside).
  auto records = [](const std::string& dir) {
    std::ifstream m(dir + "/metrics.jsonl");
    std::vector<std::string> out;
    for (std::string l; std::getline(m, l);) {
      auto j = nlohmann::json::parse(l);
      j.erase("images_per_sec");
      j.erase("elapsed_s");
      out.push_back(j.dump());
    }
    return out;
  };
  EXPECT_EQ(records(a), records(b));
  EXPECT_EQ(records(a).size(), static_cast<size_t>(2 * N));
}
