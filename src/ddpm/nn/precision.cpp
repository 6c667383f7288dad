// precision.cpp — see precision.h.
#include "ddpm/nn/precision.h"

#include "ddpm/util/cpu_features.h"

#include <stdexcept>

namespace ddpm {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw std::runtime_error("unknown precision '" + name + "' (expected fp32 or bf16)");
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

torch::ScalarType compute_dtype(Precision p) { return p == Precision::bf16 ? torch::kBFloat16 : torch::kFloat32; }

void check_precision(Precision p, const torch::Device& device, bool force) {
  check_precision(p, device, force, cpu_features());
}

void check_precision(Precision p, const torch::Device& device, bool force, const CpuFeatures& f) {
  if (p != Precision::bf16 || force || !device.is_cpu()) return;
  if (!f.native_bf16())
    throw std::runtime_error("--precision bf16: this CPU (" + (f.model.empty() ? std::string("unknown model") : f.model) +
                             "; " + f.list() +
                             ") has no native bf16 (AVX-512 BF16 or AMX), so bf16 would be emulated and slower "
                             "than fp32; use fp32, or --force-precision to run it anyway");
}

}  // namespace ddpm
