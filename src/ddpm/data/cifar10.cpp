// cifar10.cpp — see cifar10.h. Size legend: N images, 3×32×32 CHW.
#include "ddpm/data/cifar10.h"

#include "ddpm/io/formats/cifar10.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace ddpm {
namespace fs = std::filesystem;

Dataset load_cifar10(const std::string& dir, const std::string& split, const std::string& spec) {
  if (dir.empty()) throw std::runtime_error("dataset '" + spec + "': cifar10 needs a directory (cifar10:DIR)");
  if (!fs::is_directory(dir)) throw std::runtime_error("dataset '" + spec + "': " + dir + " is not a directory");
  std::vector<std::string> files;
  if (split == "test") files.push_back("test_batch.bin");
  else
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");

  constexpr int64_t R = kCifar10RecordsPerFile, P = 3 * 32 * 32;
  const int64_t N = R * static_cast<int64_t>(files.size());
  Dataset d;
  d.name = spec;
  d.images = torch::empty({N, 3, 32, 32}, torch::kUInt8);  // [N,3,32,32]
  auto labels = torch::empty({N}, torch::kLong);            // [N]
  auto* img = d.images.data_ptr<uint8_t>();
  auto* lab = labels.data_ptr<int64_t>();
  for (size_t f = 0; f < files.size(); ++f) {
    const std::string path = (fs::path(dir) / files[f]).string();
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("dataset '" + spec + "': missing " + path);
    const auto size = fs::file_size(path);
    if (size != R * kCifar10RecordBytes) check_cifar10_batch(nullptr, size, path);  // throws: wrong size, unread
    std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    check_cifar10_batch(buf.data(), buf.size(), path);
    for (int64_t i = 0; i < R; ++i) {
      const char* rec = buf.data() + i * static_cast<int64_t>(kCifar10RecordBytes);
      const int64_t k = static_cast<int64_t>(f) * R + i;
      lab[k] = static_cast<unsigned char>(rec[0]);
      std::memcpy(img + k * P, rec + 1, P);  // already CHW
    }
  }
  d.labels = labels;
  return d;
}

}  // namespace ddpm
