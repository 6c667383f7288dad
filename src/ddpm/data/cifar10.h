// cifar10.h — the CIFAR-10 dataset from the official binary batches (https://www.cs.toronto.edu/~kriz/cifar.html,
// "CIFAR-10 binary version"): DIR/data_batch_1.bin .. data_batch_5.bin (train, 50000 images) or
// DIR/test_batch.bin (test, 10000). Byte checks: formats/cifar10.h. Dataset spec: cifar10:DIR[@train|@test].
#pragma once

#include "ddpm/data/data.h"

#include <string>

namespace ddpm {

// Loads the split ("train" or "test") from `dir`: images [N,3,32,32] uint8, labels [N] int64 in 0..9.
// `spec` names the dataset in errors. Throws on a missing directory or file, a wrong size or a bad label.
Dataset load_cifar10(const std::string& dir, const std::string& split, const std::string& spec);

}  // namespace ddpm
