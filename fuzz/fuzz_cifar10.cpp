// fuzz_cifar10.cpp — libFuzzer target: CIFAR-10 binary batch validation (formats/cifar10.h), both with the
// official record count (size check) and with the count the input's size implies (label checks).
#include "ddpm/io/formats/cifar10.h"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  try {
    ddpm::check_cifar10_batch(p, size, "fuzz");
  } catch (const std::runtime_error&) {
  }
  try {
    ddpm::check_cifar10_batch(p, size, "fuzz", size / ddpm::kCifar10RecordBytes);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
