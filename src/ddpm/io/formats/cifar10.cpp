// cifar10.cpp (formats/) — see cifar10.h. No LibTorch.
#include "ddpm/io/formats/cifar10.h"

#include <stdexcept>

namespace ddpm {

void check_cifar10_batch(const char* data, size_t size, const std::string& source, uint64_t records) {
  const uint64_t need = records * kCifar10RecordBytes;
  if (size != need)
    throw std::runtime_error(source + ": not a CIFAR-10 binary batch: " + std::to_string(size) + " bytes, expected " +
                             std::to_string(need) + " (" + std::to_string(records) + " records of " +
                             std::to_string(kCifar10RecordBytes) + " bytes)");
  for (uint64_t i = 0; i < records; ++i) {
    const auto label = static_cast<unsigned char>(data[i * kCifar10RecordBytes]);
    if (label >= kCifar10Classes)
      throw std::runtime_error(source + ": record " + std::to_string(i) + " has label " + std::to_string(label) +
                               " (CIFAR-10 labels are 0..9)");
  }
}

}  // namespace ddpm
