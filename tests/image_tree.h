// image_tree.h — deterministic test images for `images:DIR` datasets, shared by tests/test_image_folder.cpp and the
// tests/make_image_tree.cpp tool. Header-only; std + stb_image_write (libstb) only. Not part of the library.
//
// The tree written by make_tree(DIR) (W×H, channels):
//   cat/a.png      40×30 RGB          cat/sub/b.jpg  32×32 RGB (JPEG quality 95)
//   dog/c.png      36×36 gray         dog/d.jpg      50×34 gray (JPEG quality 95)
//   dog/e.png      32×48 RGBA
//   ignored: dog/notes.txt, .hidden/x.png, cat/.y.png
#pragma once

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace image_tree {

struct Spec {
  const char* rel;
  int w, h, c;
};
inline const std::vector<Spec>& tree_images() {  // sorted by path, as the loader orders them
  static const std::vector<Spec> specs = {
      {"cat/a.png", 40, 30, 3}, {"cat/sub/b.jpg", 32, 32, 3}, {"dog/c.png", 36, 36, 1},
      {"dog/d.jpg", 50, 34, 1}, {"dog/e.png", 32, 48, 4}};
  return specs;
}

// Channel `ch` at (x, y) of a w×h pattern image with c channels: gradients, so crops and resizes can be checked.
//   gray: (x + y) / (w + h - 2) · 255     RGB(A): R = x / (w-1) · 255, G = y / (h-1) · 255,
//   B = 255 - gray, A = 64 + x / (w-1) · 191 (the loader drops alpha)
inline uint8_t pattern(int x, int y, int ch, int w, int h, int c) {
  const int gray = (x + y) * 255 / std::max(1, w + h - 2);
  if (c == 1) return static_cast<uint8_t>(gray);
  switch (ch) {
    case 0: return static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
    case 1: return static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
    case 2: return static_cast<uint8_t>(255 - gray);
    default: return static_cast<uint8_t>(64 + x * 191 / std::max(1, w - 1));
  }
}

inline std::vector<uint8_t> pattern_image(int w, int h, int c) {  // [H, W, C]
  std::vector<uint8_t> px(size_t(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch) px[(size_t(y) * w + x) * c + ch] = pattern(x, y, ch, w, h, c);
  return px;
}

inline bool is_jpeg_name(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".jpg" || ext == ".jpeg";
}

// Writes [H, W, C] pixels as JPEG (quality 95) if the name ends in .jpg/.jpeg, else as PNG. Creates folders.
inline void write_image(const std::string& path, int w, int h, int c, const std::vector<uint8_t>& hwc) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  const int ok = is_jpeg_name(path) ? stbi_write_jpg(path.c_str(), w, h, c, hwc.data(), 95)
                                    : stbi_write_png(path.c_str(), w, h, c, hwc.data(), w * c);
  if (!ok) throw std::runtime_error(path + ": cannot write image");
}

inline void write_pattern(const std::string& path, int w, int h, int c) { write_image(path, w, h, c, pattern_image(w, h, c)); }

inline void write_solid(const std::string& path, int w, int h, int c, int value) {
  write_image(path, w, h, c, std::vector<uint8_t>(size_t(w) * h * c, static_cast<uint8_t>(value)));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

// A valid 64×64 RGB pattern image (JPEG or PNG by the name), cut to 60% of its bytes.
inline void write_truncated(const std::string& path) {
  write_pattern(path, 64, 64, 3);
  const std::string b = read_bytes(path);
  write_bytes(path, b.substr(0, b.size() * 6 / 10));
}

inline void make_tree(const std::string& dir) {
  for (const auto& s : tree_images()) write_pattern(dir + "/" + s.rel, s.w, s.h, s.c);
  write_bytes(dir + "/dog/notes.txt", "not an image\n");
  write_pattern(dir + "/.hidden/x.png", 8, 8, 3);
  write_pattern(dir + "/cat/.y.png", 8, 8, 3);
}

}  // namespace image_tree
