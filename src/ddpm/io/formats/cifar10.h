// cifar10.h (formats/) — the CIFAR-10 "binary version" batch files over bytes, without LibTorch (fuzzed as is):
// data_batch_1.bin .. data_batch_5.bin (train) and test_batch.bin (test), each exactly 10000 records of
//   1 label byte (0..9) | 1024 red | 1024 green | 1024 blue bytes (32×32, row-major: CHW)
// The dataset loader is ../cifar10.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ddpm {

constexpr uint64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;  // 3073
constexpr uint64_t kCifar10RecordsPerFile = 10000;
constexpr int kCifar10Classes = 10;

// Validates a batch of `records` records: size == records · 3073 exactly and every label in 0..9. Throws
// std::runtime_error "<source>: ..." naming the record at fault.
void check_cifar10_batch(const char* data, size_t size, const std::string& source,
                         uint64_t records = kCifar10RecordsPerFile);

}  // namespace ddpm
