// test_image_folder.cpp — `images:DIR` datasets (ddpm/data/image_folder.h): scan, decode checks, crop/resize, labels and
// the memory-mapped cache. No LibTorch. Temp files go under $DDPM_TEST_TMP (else /tmp).
#include "ddpm/data/image_folder.h"

#include "image_tree.h"

#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using ddpm::ImageFolder;
using ddpm::ImageFolderOptions;

namespace {

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("DDPM_TEST_TMP");
    const fs::path base = env && *env ? env : "/tmp";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = base / ("image_folder_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    tree_ = (root_ / "tree").string();
    cache_ = (root_ / "cache" / "images.cache").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  ImageFolderOptions opts(int size = 32) {
    ImageFolderOptions o;
    o.size = size;
    o.allow_upscale = true;  // cat/a.png is 40×30
    o.log = &log_;
    return o;
  }
  ImageFolderOptions cached(int size = 32) {
    auto o = opts(size);
    o.cache = cache_;
    return o;
  }
  std::string take_log() {
    std::string s = log_.str();
    log_.str("");
    return s;
  }
  // The error message of load(), or "" if it succeeded.
  std::string error_of(const std::string& dir, const ImageFolderOptions& o) {
    try {
      ImageFolder::load(dir, o);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  fs::path root_;
  std::string tree_, cache_;
  std::ostringstream log_;
};

std::vector<uint8_t> all_pixels(const ImageFolder& f) {
  const size_t n = size_t(f.size()) * f.channels() * f.image_size() * f.image_size();
  return std::vector<uint8_t>(f.pixels(), f.pixels() + n);
}

const uint8_t* image(const ImageFolder& f, int64_t i) {
  return f.pixels() + size_t(i) * f.channels() * f.image_size() * f.image_size();  // [C, S, S]
}

std::vector<std::string> temp_files_next_to(const std::string& cache) {
  std::vector<std::string> out;
  const fs::path dir = fs::path(cache).parent_path();
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().string());
  return out;
}

int64_t rss_anon_kb() {  // -1 where the kernel does not report it
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssAnon:", 0) == 0) return std::stoll(line.substr(8));
  return -1;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---- scan, decode, resize -----------------------------------------------------------------------------------------

TEST_F(ImageFolderTest, LoadsTreeSortedIgnoringHiddenAndText) {
  image_tree::make_tree(tree_);
  const auto f = ImageFolder::load(tree_, opts());
  EXPECT_EQ(f.size(), 5);
  EXPECT_EQ(f.channels(), 3);
  EXPECT_EQ(f.image_size(), 32);
  EXPECT_EQ(f.files(), (std::vector<std::string>{"cat/a.png", "cat/sub/b.jpg", "dog/c.png", "dog/d.jpg", "dog/e.png"}));
  EXPECT_TRUE(f.labels().empty());
  EXPECT_TRUE(f.class_names().empty());
  EXPECT_FALSE(f.from_cache());
  EXPECT_EQ(f.skipped(), 0);
}

TEST_F(ImageFolderTest, ChannelConversions) {
  image_tree::make_tree(tree_);
  const auto rgb = ImageFolder::load(tree_, opts());
  const size_t plane = 32 * 32;
  for (int64_t i : {2, 3}) {  // gray files -> three equal planes
    const uint8_t* p = image(rgb, i);
    EXPECT_EQ(std::memcmp(p, p + plane, plane), 0) << rgb.files()[i];
    EXPECT_EQ(std::memcmp(p, p + 2 * plane, plane), 0) << rgb.files()[i];
  }
  auto o = opts();
  o.channels = 1;
  const auto gray = ImageFolder::load(tree_, o);
  ASSERT_EQ(gray.channels(), 1);
  ASSERT_EQ(gray.size(), 5);
  for (int64_t i = 0; i < 5; ++i) {  // luminance of the RGB result, up to rounding (resize and conversion commute)
    const uint8_t* p = image(rgb, i);
    const uint8_t* g = image(gray, i);
    for (size_t k = 0; k < plane; ++k) {
      const int lum = (77 * p[k] + 150 * p[plane + k] + 29 * p[2 * plane + k]) >> 8;
      ASSERT_NEAR(g[k], lum, 2) << gray.files()[i] << " pixel " << k;
    }
  }
}

TEST_F(ImageFolderTest, LabelsAndClassNames) {
  image_tree::make_tree(tree_);
  auto o = opts();
  o.labels = true;
  const auto f = ImageFolder::load(tree_, o);
  EXPECT_EQ(f.class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(f.labels(), (std::vector<int64_t>{0, 0, 1, 1, 1}));  // cat/sub/b.jpg is a cat
}

TEST_F(ImageFolderTest, ExactSizeIsByteIdentical) {
  image_tree::make_tree(tree_);
  const auto f = ImageFolder::load(tree_, opts());
  // dog/e.png: 32×48 RGBA -> rows 8..39, alpha dropped, no resampling.
  const uint8_t* e = image(f, 4);
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        ASSERT_EQ(e[(ch * 32 + y) * 32 + x], image_tree::pattern(x, y + 8, ch, 32, 48, 4)) << ch << " " << y << " " << x;
  // cat/sub/b.jpg: 32×32 -> exactly what stb decodes.
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load((tree_ + "/cat/sub/b.jpg").c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr);
  const uint8_t* b = image(f, 1);
  for (int ch = 0; ch < 3; ++ch)
    for (int k = 0; k < 32 * 32; ++k) ASSERT_EQ(b[ch * 1024 + k], px[k * 3 + ch]);
  stbi_image_free(px);
}

TEST_F(ImageFolderTest, ConstantStaysConstant) {
  image_tree::write_solid(tree_ + "/a_down.png", 100, 70, 3, 77);
  image_tree::write_solid(tree_ + "/b_up.png", 20, 20, 3, 200);
  image_tree::write_solid(tree_ + "/c_gray.png", 45, 45, 1, 13);
  image_tree::write_solid(tree_ + "/d_black.png", 33, 90, 3, 0);
  image_tree::write_solid(tree_ + "/e_white.png", 64, 64, 1, 255);
  const int want[] = {77, 200, 13, 0, 255};
  for (int channels : {3, 1}) {
    auto o = opts();
    o.channels = channels;
    const auto f = ImageFolder::load(tree_, o);
    ASSERT_EQ(f.size(), 5);
    for (int64_t i = 0; i < 5; ++i)
      for (int k = 0; k < channels * 32 * 32; ++k) ASSERT_EQ(image(f, i)[k], want[i]) << f.files()[i] << " " << k;
  }
}

TEST_F(ImageFolderTest, CropAndResizeFollowGradient) {
  image_tree::make_tree(tree_);
  const auto f = ImageFolder::load(tree_, opts());
  // cat/a.png: 40×30 -> centre square x 5..34, enlarged 30 -> 32. R follows x, G follows y.
  const uint8_t* a = image(f, 0);
  double worst = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const double u = (x + 0.5) * 30 / 32 - 0.5, v = (y + 0.5) * 30 / 32 - 0.5;
      const double r = (5 + std::clamp(u, 0.0, 29.0)) * 255 / 39, g = std::clamp(v, 0.0, 29.0) * 255 / 29;
      worst = std::max({worst, std::abs(a[y * 32 + x] - r), std::abs(a[1024 + y * 32 + x] - g)});
    }
  EXPECT_LT(worst, 5.0);
  // dog/d.jpg: 50×34 gray JPEG -> x 8..41, shrunk 34 -> 32; JPEG error allowed for.
  const uint8_t* d = image(f, 3);
  double mean_err = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const double u = (x + 0.5) * 34 / 32 - 0.5, v = (y + 0.5) * 34 / 32 - 0.5;
      mean_err += std::abs(d[y * 32 + x] - (8 + std::clamp(u, 0.0, 33.0) + std::clamp(v, 0.0, 33.0)) * 255 / 82);
    }
  EXPECT_LT(mean_err / 1024, 3.0);
}

TEST_F(ImageFolderTest, UpscaleRequiresOption) {
  image_tree::make_tree(tree_);
  auto o = opts();
  o.allow_upscale = false;
  const std::string err = error_of(tree_, o);
  EXPECT_TRUE(contains(err, tree_ + "/cat/a.png")) << err;
  EXPECT_TRUE(contains(err, "shorter side 30 is below the size 32")) << err;
  o.skip_bad = true;  // a small image is not a bad file
  EXPECT_TRUE(contains(error_of(tree_, o), "cat/a.png"));
  o.size = 30;  // nothing needs enlarging
  EXPECT_EQ(ImageFolder::load(tree_, o).size(), 5);
}

TEST_F(ImageFolderTest, ThreadsGiveSameBytes) {
  image_tree::make_tree(tree_);
  for (int i = 0; i < 40; ++i) image_tree::write_pattern(tree_ + "/more/" + std::to_string(i) + ".png", 40 + i, 50, 3);
  auto o = opts();
  o.threads = 1;
  const auto one = ImageFolder::load(tree_, o);
  o.threads = 3;
  const auto three = ImageFolder::load(tree_, o);
  EXPECT_EQ(one.files(), three.files());
  EXPECT_EQ(all_pixels(one), all_pixels(three));
}

// ---- the cache ----------------------------------------------------------------------------------------------------

TEST_F(ImageFolderTest, CacheSecondLoadReusesIt) {
  image_tree::make_tree(tree_);
  auto o = cached();
  o.labels = true;
  const auto first = ImageFolder::load(tree_, o);
  EXPECT_FALSE(first.from_cache());
  EXPECT_TRUE(contains(take_log(), "cache " + cache_ + " does not exist; building it"));
  const auto second = ImageFolder::load(tree_, o);
  EXPECT_TRUE(second.from_cache());
  EXPECT_TRUE(contains(take_log(), "using image cache " + cache_));
  EXPECT_EQ(all_pixels(first), all_pixels(second));
  EXPECT_EQ(first.files(), second.files());
  EXPECT_EQ(first.labels(), second.labels());
  EXPECT_EQ(first.class_names(), second.class_names());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(second.pixels()) % 64, 0u);
  EXPECT_EQ(all_pixels(ImageFolder::load(tree_, opts())), all_pixels(second));  // same as without a cache
  EXPECT_TRUE(temp_files_next_to(cache_).empty());
}

TEST_F(ImageFolderTest, CacheRebuildsWhenAFileChanges) {
  image_tree::make_tree(tree_);
  ImageFolder::load(tree_, cached());
  // Different content and size.
  image_tree::write_solid(tree_ + "/dog/c.png", 36, 36, 1, 99);
  take_log();
  const auto f = ImageFolder::load(tree_, cached());
  EXPECT_FALSE(f.from_cache());
  const std::string log = take_log();
  EXPECT_TRUE(contains(log, "cache " + cache_ + " is stale: " + tree_ + "/dog/c.png changed (size ")) << log;
  EXPECT_TRUE(contains(log, "; rebuilding")) << log;
  for (int k = 0; k < 3 * 1024; ++k) ASSERT_EQ(image(f, 2)[k], 99);
  EXPECT_TRUE(ImageFolder::load(tree_, cached()).from_cache());
  // Same bytes, new mtime.
  const fs::path e = tree_ + "/dog/e.png";
  fs::last_write_time(e, fs::last_write_time(e) + std::chrono::seconds(5));
  take_log();
  EXPECT_FALSE(ImageFolder::load(tree_, cached()).from_cache());
  EXPECT_TRUE(contains(take_log(), tree_ + "/dog/e.png changed (mtime "));
  EXPECT_TRUE(ImageFolder::load(tree_, cached()).from_cache());
}

TEST_F(ImageFolderTest, CacheRebuildsWhenFilesAreAddedOrRemoved) {
  image_tree::make_tree(tree_);
  ImageFolder::load(tree_, cached());
  image_tree::write_pattern(tree_ + "/dog/f.png", 32, 32, 3);
  take_log();
  auto f = ImageFolder::load(tree_, cached());
  EXPECT_FALSE(f.from_cache());
  EXPECT_EQ(f.size(), 6);
  EXPECT_TRUE(contains(take_log(), tree_ + "/dog/f.png was added"));
  fs::remove(tree_ + "/cat/a.png");
  f = ImageFolder::load(tree_, cached());
  EXPECT_FALSE(f.from_cache());
  EXPECT_EQ(f.size(), 5);
  EXPECT_EQ(f.files().front(), "cat/sub/b.jpg");
  EXPECT_TRUE(contains(take_log(), tree_ + "/cat/a.png was removed"));
  // A new non-image or hidden file changes nothing.
  image_tree::write_bytes(tree_ + "/cat/readme.md", "x");
  image_tree::write_pattern(tree_ + "/.hidden/z.png", 8, 8, 3);
  EXPECT_TRUE(ImageFolder::load(tree_, cached()).from_cache());
}

TEST_F(ImageFolderTest, CacheRebuildsWhenOptionsChange) {
  image_tree::make_tree(tree_);
  ImageFolder::load(tree_, cached());
  struct Case {
    void (*edit)(ImageFolderOptions&);
    const char* why;
  };
  const Case cases[] = {
      {[](ImageFolderOptions& o) { o.size = 16; }, "built for size 32, now 16"},
      {[](ImageFolderOptions& o) { o.channels = 1; }, "built for 3 channels, now 1"},
      {[](ImageFolderOptions& o) { o.labels = true; }, "built without labels, now with"},
  };
  ImageFolderOptions prev = cached();
  for (const auto& c : cases) {
    auto o = cached();
    c.edit(o);
    take_log();
    const auto f = ImageFolder::load(tree_, o);
    EXPECT_FALSE(f.from_cache()) << c.why;
    const std::string log = take_log();
    EXPECT_TRUE(contains(log, "cache " + cache_ + " is stale: " + c.why + "; rebuilding")) << log;
    EXPECT_EQ(f.image_size(), o.size);
    EXPECT_EQ(f.channels(), o.channels);
    EXPECT_TRUE(ImageFolder::load(tree_, o).from_cache()) << c.why;
    // back to the original options for the next case
    ImageFolder::load(tree_, prev);
  }
  auto o = cached(16);  // nothing needs enlarging at 16, but the option still counts
  ImageFolder::load(tree_, o);
  o.allow_upscale = false;
  take_log();
  EXPECT_FALSE(ImageFolder::load(tree_, o).from_cache());
  EXPECT_TRUE(contains(take_log(), "is stale: built with upscaling allowed, now refused; rebuilding"));
}

TEST_F(ImageFolderTest, CorruptCacheIsRebuilt) {
  image_tree::make_tree(tree_);
  const auto good = all_pixels(ImageFolder::load(tree_, cached()));
  const std::string bytes = image_tree::read_bytes(cache_);
  struct Case {
    std::string content, why;
  };
  std::string bad_magic = bytes, bad_manifest = bytes;
  bad_magic[0] = 'X';
  bad_manifest[bytes.size() - 20] ^= 0x01;
  const Case cases[] = {
      {bytes.substr(0, bytes.size() / 2), "is truncated or inconsistent"},
      {bytes.substr(0, 10), "is truncated (10 bytes)"},
      {"", "is truncated (0 bytes)"},
      {bad_manifest, "has a corrupt manifest (checksum mismatch)"},
  };
  for (const auto& c : cases) {
    image_tree::write_bytes(cache_, c.content);
    take_log();
    const auto f = ImageFolder::load(tree_, cached());
    EXPECT_FALSE(f.from_cache()) << c.why;
    const std::string log = take_log();
    EXPECT_TRUE(contains(log, "cache " + cache_ + " ") && contains(log, c.why) && contains(log, "; rebuilding")) << log;
    EXPECT_EQ(all_pixels(f), good);
    EXPECT_EQ(image_tree::read_bytes(cache_), bytes);  // rebuilt identically
  }
  // Not a cache at all (bad magic): refused, and the file is left as it was.
  image_tree::write_bytes(cache_, bad_magic);
  const std::string err = error_of(tree_, cached());
  EXPECT_TRUE(contains(err, cache_ + ": exists and is not a ddpm image cache; refusing to overwrite it")) << err;
  EXPECT_EQ(image_tree::read_bytes(cache_), bad_magic);
}

TEST_F(ImageFolderTest, FailedBuildKeepsPreviousCache) {
  image_tree::make_tree(tree_);
  ImageFolder::load(tree_, cached());
  const std::string before = image_tree::read_bytes(cache_);
  image_tree::write_truncated(tree_ + "/dog/zz.jpg");
  const std::string err = error_of(tree_, cached());
  EXPECT_TRUE(contains(err, tree_ + "/dog/zz.jpg: truncated JPEG")) << err;
  EXPECT_EQ(image_tree::read_bytes(cache_), before);
  EXPECT_TRUE(temp_files_next_to(cache_).empty());
  // Still no reuse of the now-stale cache, and skip_bad gets past the file.
  auto o = cached();
  o.skip_bad = true;
  const auto f = ImageFolder::load(tree_, o);
  EXPECT_FALSE(f.from_cache());
  EXPECT_EQ(f.size(), 5);
  EXPECT_EQ(f.skipped(), 1);
}

TEST_F(ImageFolderTest, SkipBadCacheIsNotReusedWithoutSkipBad) {
  image_tree::make_tree(tree_);
  image_tree::write_truncated(tree_ + "/dog/bad.png");
  auto o = cached();
  o.skip_bad = true;
  ImageFolder::load(tree_, o);
  const auto again = ImageFolder::load(tree_, o);
  EXPECT_TRUE(again.from_cache());
  EXPECT_EQ(again.skipped(), 1);
  EXPECT_EQ(again.size(), 5);
  take_log();
  const std::string err = error_of(tree_, cached());
  EXPECT_TRUE(contains(err, tree_ + "/dog/bad.png: truncated PNG")) << err;
  EXPECT_TRUE(contains(take_log(), "skip_bad is off"));
}

TEST_F(ImageFolderTest, KeepaliveOutlivesTheFolder) {
  image_tree::make_tree(tree_);
  std::shared_ptr<void> keep;
  const uint8_t* px = nullptr;
  std::vector<uint8_t> copy;
  {
    const auto f = ImageFolder::load(tree_, cached());
    keep = f.keepalive();
    px = f.pixels();
    copy = all_pixels(f);
  }
  fs::remove(cache_);  // the mapping stays valid after unlink
  EXPECT_EQ(std::memcmp(px, copy.data(), copy.size()), 0);
}

TEST_F(ImageFolderTest, CachedPixelsAreFileBackedNotAnonymousMemory) {
  const int n = 400;  // 400 × 3 × 64 × 64 = 4.9 MB
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/c%d/%04d.png", i % 4, i);
    image_tree::write_pattern(tree_ + name, 64 + i % 7, 64, 3);
  }
  auto o = cached(64);
  o.log = nullptr;
  ImageFolder::load(tree_, o);
  const int64_t before = rss_anon_kb();
  if (before < 0) GTEST_SKIP() << "no RssAnon in /proc/self/status";
  const auto f = ImageFolder::load(tree_, o);
  ASSERT_TRUE(f.from_cache());
  uint64_t sum = 0;
  const size_t bytes = size_t(f.size()) * 3 * 64 * 64;
  for (size_t k = 0; k < bytes; k += 512) sum += f.pixels()[k];  // touch every page
  const int64_t grown = rss_anon_kb() - before;
  EXPECT_GT(sum, 0u);
  EXPECT_LT(grown * 1024, int64_t(bytes / 4)) << "anonymous RSS grew by " << grown << " kB for " << bytes << " pixel bytes";
}

// ---- bad input ----------------------------------------------------------------------------------------------------

TEST_F(ImageFolderTest, TruncatedJpegNamesPath) {
  image_tree::make_tree(tree_);
  image_tree::write_truncated(tree_ + "/dog/t.jpg");
  EXPECT_EQ(error_of(tree_, opts()), tree_ + "/dog/t.jpg: truncated JPEG (no end-of-image marker)");
  // Missing only the final FFD9 is also caught; bytes after a complete image are fine.
  const std::string full = (image_tree::write_pattern(tree_ + "/dog/t.jpg", 40, 40, 3), image_tree::read_bytes(tree_ + "/dog/t.jpg"));
  image_tree::write_bytes(tree_ + "/dog/t.jpg", full.substr(0, full.size() - 2));
  EXPECT_TRUE(contains(error_of(tree_, opts()), "dog/t.jpg: truncated JPEG"));
  image_tree::write_bytes(tree_ + "/dog/t.jpg", full + std::string(100, '\0') + "trailer");
  EXPECT_EQ(ImageFolder::load(tree_, opts()).size(), 6);
}

TEST_F(ImageFolderTest, TruncatedPngNamesPath) {
  image_tree::make_tree(tree_);
  image_tree::write_truncated(tree_ + "/cat/t.png");
  const std::string err = error_of(tree_, opts());
  EXPECT_EQ(err.rfind(tree_ + "/cat/t.png: truncated PNG (no IEND chunk", 0), 0u) << err;
  // A flipped bit in the image data is caught by the chunk CRC.
  image_tree::write_pattern(tree_ + "/cat/t.png", 40, 40, 3);
  std::string b = image_tree::read_bytes(tree_ + "/cat/t.png");
  b[b.size() - 20] ^= 0x10;  // inside IDAT
  image_tree::write_bytes(tree_ + "/cat/t.png", b);
  EXPECT_TRUE(contains(error_of(tree_, opts()), "cat/t.png: corrupt PNG (CRC mismatch in IDAT chunk)"));
}

TEST_F(ImageFolderTest, NotAnImageDespiteExtension) {
  image_tree::make_tree(tree_);
  image_tree::write_bytes(tree_ + "/cat/fake.png", "hello, not a PNG\n");
  EXPECT_EQ(error_of(tree_, opts()), tree_ + "/cat/fake.png: not a PNG or JPEG file (unknown signature)");
  image_tree::write_bytes(tree_ + "/cat/fake.png", "");
  EXPECT_EQ(error_of(tree_, opts()), tree_ + "/cat/fake.png: not a PNG or JPEG file (empty)");
  // The content decides the format, not the name: a PNG called .jpg is fine.
  fs::remove(tree_ + "/cat/fake.png");
  fs::copy_file(tree_ + "/dog/e.png", tree_ + "/dog/png.JPG");
  EXPECT_EQ(ImageFolder::load(tree_, opts()).size(), 6);
}

TEST_F(ImageFolderTest, SkipBadSkipsAndCounts) {
  image_tree::make_tree(tree_);
  image_tree::write_truncated(tree_ + "/dog/t.jpg");
  image_tree::write_truncated(tree_ + "/dog/u.png");
  image_tree::write_bytes(tree_ + "/cat/fake.jpeg", "nope");
  auto o = opts();
  o.skip_bad = true;
  const auto f = ImageFolder::load(tree_, o);
  EXPECT_EQ(f.size(), 5);
  EXPECT_EQ(f.skipped(), 3);
  EXPECT_EQ(f.files(), (std::vector<std::string>{"cat/a.png", "cat/sub/b.jpg", "dog/c.png", "dog/d.jpg", "dog/e.png"}));
  const std::string log = take_log();
  for (const char* rel : {"/dog/t.jpg: truncated JPEG", "/dog/u.png: truncated PNG", "/cat/fake.jpeg: not a PNG or JPEG"})
    EXPECT_TRUE(contains(log, "skipping " + tree_ + rel)) << log;
  // Nothing decodable at all is an error even with skip_bad.
  const std::string only_bad = (root_ / "only_bad").string();
  image_tree::write_truncated(only_bad + "/x.png");
  EXPECT_TRUE(contains(error_of(only_bad, o), "none of the 1 image files could be decoded"));
}

TEST_F(ImageFolderTest, EmptyFolderIsAnError) {
  image_tree::write_bytes(tree_ + "/notes.txt", "x");
  image_tree::write_pattern(tree_ + "/.hidden/x.png", 8, 8, 3);
  EXPECT_EQ(error_of(tree_, opts()), tree_ + ": no PNG or JPEG files found (searched recursively)");
}

TEST_F(ImageFolderTest, MissingFolderIsAnError) {
  EXPECT_EQ(error_of(tree_ + "/nope", opts()), tree_ + "/nope: no such folder");
  image_tree::write_bytes(tree_ + "/file", "x");
  EXPECT_EQ(error_of(tree_ + "/file", opts()), tree_ + "/file: not a folder");
}

TEST_F(ImageFolderTest, TopLevelImageWithLabelsIsAnError) {
  image_tree::make_tree(tree_);
  image_tree::write_pattern(tree_ + "/top.png", 32, 32, 3);
  auto o = opts();
  o.labels = true;
  EXPECT_EQ(error_of(tree_, o), tree_ + "/top.png: not in a class sub-folder (labels come from the first-level folder names)");
  o.labels = false;
  EXPECT_EQ(ImageFolder::load(tree_, o).size(), 6);
}

TEST_F(ImageFolderTest, BadOptionsAreErrors) {
  image_tree::make_tree(tree_);
  auto o = opts(0);
  EXPECT_TRUE(contains(error_of(tree_, o), "image size must be in 1..16384 (got 0)"));
  o = opts();
  o.channels = 2;
  EXPECT_TRUE(contains(error_of(tree_, o), "channels must be 1 or 3 (got 2)"));
}
