// inputs.cpp — see inputs.h.
#include "ddpm/restoration/inputs.h"

#include "ddpm/data/image_folder.h"
#include "ddpm/io/image_io.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace ddpm {

std::string side_str(int64_t h, int64_t w) { return std::to_string(w) + "x" + std::to_string(h); }
const char* channel_word(int64_t c) { return c == 1 ? "gray" : c == 3 ? "RGB" : "?"; }

torch::Tensor input_image_from_bytes(const std::string& bytes, const std::string& what, int64_t channels,
                                     int64_t height, int64_t width, const std::string& hint) {
  if (bytes.empty()) throw std::runtime_error(what + ": empty (no image bytes)");
  check_image_complete(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), what);
  auto img = decode_image(bytes, what);  // [C,H,W], the file's channels
  if (img.size(0) == 2) img = img.slice(0, 0, 1);  // gray + alpha -> gray
  if (img.size(0) == 4) img = img.slice(0, 0, 3);  // RGBA -> RGB (alpha dropped)
  if (img.size(0) != channels)
    throw std::runtime_error(what + ": a " + std::to_string(img.size(0)) + "-channel (" + channel_word(img.size(0)) +
                             ") image; the model takes " + std::to_string(channels) + "-channel (" +
                             channel_word(channels) + ") images");
  if (img.size(1) != height || img.size(2) != width)
    throw std::runtime_error(what + ": the image is " + side_str(img.size(1), img.size(2)) + ", expected " +
                             side_str(height, width) + (hint.empty() ? std::string() : " (" + hint + ")"));
  return img.contiguous();
}

torch::Tensor input_image_from_file(const std::string& path, const std::string& flag, int64_t channels,
                                    int64_t height, int64_t width, const std::string& hint) {
  const std::string what = flag + " '" + path + "'";
  if (std::filesystem::is_directory(path)) throw std::runtime_error(what + ": is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(what + ": cannot open the file");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw std::runtime_error(what + ": read error");
  return input_image_from_bytes(bytes, what, channels, height, width, hint);
}

}  // namespace ddpm
