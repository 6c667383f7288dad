// precision.h — the arithmetic a network runs in: fp32, or bf16 mixed precision (convolutions, matmuls and
// attention products in bf16; GroupNorm statistics, softmax, the loss, the optimiser and the EMA in fp32; fp32
// master weights and checkpoints). Not here: the casts themselves (unet.cpp), CPU detection (cpu_features.h).
#pragma once

#include "ddpm/util/cpu_features.h"

#include <torch/torch.h>

#include <string>

namespace ddpm {

enum class Precision { fp32, bf16 };

// "fp32" | "bf16"; anything else throws naming the valid values.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);
// The dtype activations are stored in.
torch::ScalarType compute_dtype(Precision p);
// Throws a one-line error when `p` would be slower than fp32 on `device`: bf16 on a CPU without AVX-512 BF16 or
// AMX is emulated by LibTorch (several times slower than fp32). `force` runs it anyway (for tests).
void check_precision(Precision p, const torch::Device& device, bool force);
// The same for a given CPU (tests).
void check_precision(Precision p, const torch::Device& device, bool force, const CpuFeatures& cpu);

}  // namespace ddpm
