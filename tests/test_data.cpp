// test_data.cpp — IDX reading (raw and gzip), validation, and the real Fashion-MNIST when installed.
#include "ddpm/data/data.h"
#include "ddpm/data/image_set.h"
#include "ddpm/io/image_io.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {
std::string tmp_dir() {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : fs::temp_directory_path().string()) / "data";
  fs::create_directories(dir);
  return dir.string();
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

std::string idx_images(uint32_t n, uint32_t h, uint32_t w) {
  std::string s = be32(0x803) + be32(n) + be32(h) + be32(w);
  for (uint32_t i = 0; i < n * h * w; ++i) s.push_back(static_cast<char>(i % 251));
  return s;
}

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}
}  // namespace

TEST(IDX, ReadsRawAndGzip) {
  const auto dir = tmp_dir();
  write(dir + "/raw", idx_images(3, 4, 5));
  write_gz(dir + "/gz", idx_images(3, 4, 5));
  auto a = read_idx_images(dir + "/raw");
  auto b = read_idx_images(dir + "/gz");
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 1, 4, 5}));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(a[1][0][0][0].item<int>(), 20);
  write(dir + "/labels", be32(0x801) + be32(3) + std::string("\x01\x09\x00", 3));
  auto l = read_idx_labels(dir + "/labels");
  EXPECT_EQ(l.scalar_type(), torch::kLong);
  EXPECT_EQ(l[1].item<int64_t>(), 9);
}

TEST(IDX, RejectsBadFiles) {
  const auto dir = tmp_dir();
  auto expect_error = [&](const std::string& name, const std::string& bytes, const std::string& needle) {
    write(dir + "/" + name, bytes);
    try {
      read_idx_images(dir + "/" + name);
      ADD_FAILURE() << name << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << "error must name the file: " << e.what();
    }
  };
  expect_error("magic", be32(0x801) + be32(1) + be32(2) + be32(2) + "abcd", "magic");
  expect_error("truncated", idx_images(3, 4, 5).substr(0, 40), "size mismatch");
  expect_error("extra", idx_images(3, 4, 5) + "x", "size mismatch");
  expect_error("tiny", "ab", "too short");
  auto gz = dir + "/badgz";
  write_gz(gz, idx_images(10, 28, 28));
  std::ifstream in(gz, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  expect_error("cutgz", bytes.substr(0, bytes.size() / 2), "gzip");
  EXPECT_THROW(read_idx_images(dir + "/does-not-exist"), std::runtime_error);
}

TEST(Dataset, SpecsAndErrors) {
  EXPECT_THROW(load_dataset("imagenet"), std::runtime_error);
  EXPECT_THROW(load_dataset("mnist"), std::runtime_error);
  EXPECT_THROW(load_dataset("fashion-mnist:/nonexistent"), std::runtime_error);
  EXPECT_THROW(load_dataset("fashion-mnist@valid"), std::runtime_error);
  const auto dir = tmp_dir() + "/mini";
  fs::create_directories(dir);
  write_gz(dir + "/train-images-idx3-ubyte.gz", idx_images(4, 28, 28));
  write(dir + "/train-labels-idx1-ubyte", be32(0x801) + be32(3) + std::string("\x01\x02\x03", 3));
  EXPECT_THROW(load_dataset("mnist:" + dir), std::runtime_error);  // 4 images, 3 labels
  write(dir + "/train-labels-idx1-ubyte", be32(0x801) + be32(4) + std::string("\x01\x02\x03\x04", 4));
  auto d = load_dataset("mnist:" + dir);
  EXPECT_EQ(d.size(), 4);
  EXPECT_EQ(d.labels.size(0), 4);
}

TEST(Dataset, RealFashionMnist) {
  if (!fs::exists(kDefaultFashionMnistDir)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  auto train = load_dataset("fashion-mnist");
  auto test = load_dataset("fashion-mnist@test");
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(train.labels.max().item<int64_t>(), 9);
}

TEST(Dataset, ScalingRoundTrips) {
  auto u8 = torch::arange(256, torch::kLong).to(torch::kUInt8).view({1, 1, 16, 16});
  auto x = to_model_range(u8);
  EXPECT_NEAR(x.min().item<double>(), -1.0, 1e-7);
  EXPECT_NEAR(x.max().item<double>(), 1.0, 1e-7);
  EXPECT_TRUE(torch::equal(to_uint8(x), u8));
}

// Gray images are decoded into their own memory: a regression test (the [1,H,W] view of stb's buffer counted as
// contiguous, so the buffer was freed under it and every image of a folder read back as the last one decoded).
TEST(ImageSet, GrayPngFolderAndNpzHoldTheSamePixels) {
  const auto dir = tmp_dir() + "/image_set";
  fs::remove_all(dir);
  fs::create_directories(dir + "/pngs");
  auto imgs = torch::randint(0, 256, {5, 1, 9, 7}, torch::kLong).to(torch::kByte);  // [N,1,H,W]
  for (int64_t i = 0; i < 5; ++i) save_png(dir + "/pngs/" + std::to_string(i) + ".png", imgs[i]);
  for (int64_t i = 0; i < 5; ++i) EXPECT_TRUE(torch::equal(load_image(dir + "/pngs/" + std::to_string(i) + ".png"), imgs[i])) << i;
  EXPECT_TRUE(torch::equal(load_image_set(dir + "/pngs"), imgs));
  save_image_npz(dir + "/s.npz", imgs, torch::arange(5));
  EXPECT_TRUE(torch::equal(load_image_set(dir + "/s.npz"), imgs));
  auto rgb = torch::randint(0, 256, {3, 3, 4, 6}, torch::kLong).to(torch::kByte);
  save_image_npz(dir + "/rgb.npz", rgb);
  EXPECT_TRUE(torch::equal(load_image_set(dir + "/rgb.npz"), rgb));
  write(dir + "/bad.npz", "PK\x03\x04garbage");
  EXPECT_THROW(load_image_set(dir + "/bad.npz"), std::runtime_error);
  EXPECT_THROW(load_image_set(dir + "/missing"), std::runtime_error);
}
