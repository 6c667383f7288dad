// cpu_features.h — what the CPU this process runs on can do, from cpuid (x86-64) and the OS's XSAVE state
// (xgetbv): the vector ISA levels that decide whether bf16 pays (native AVX-512 BF16 or AMX) or is emulated.
// Torch-free. Not here: choosing a precision (nn/precision.h).
#pragma once

#include <string>

namespace ddpm {

struct CpuFeatures {
  std::string model;        // "Intel(R) Xeon(R) ..." (cpuid brand string; "" where unknown)
  bool avx2 = false;        // and FMA
  bool avx512 = false;      // AVX-512 F, usable (OS saves the ZMM state)
  bool avx512_bf16 = false; // AVX-512 BF16 (VCVTNE2PS2BF16, VDPBF16PS)
  bool amx_bf16 = false;    // AMX tiles with BF16 (the OS must also grant the tile state to the process)
  // The best of these, as ddpm prints it: "amx_bf16", "avx512_bf16", "avx512", "avx2" or "baseline".
  std::string best() const;
  // All flags present, space separated, e.g. "avx2 avx512 avx512_bf16 amx_bf16".
  std::string list() const;
  // Native bf16 arithmetic (AVX-512 BF16 or AMX): bf16 convolutions and matmuls beat fp32 here.
  bool native_bf16() const { return avx512_bf16 || amx_bf16; }
};

// Detected once, then cached. DDPM_CPU_ISA_MAX=avx2|avx512|baseline in the environment masks what is above.
const CpuFeatures& cpu_features();

}  // namespace ddpm
