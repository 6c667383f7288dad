// cpu_features.cpp — see cpu_features.h. cpuid leaves (Intel SDM vol. 2A, CPUID): 1 ECX.OSXSAVE[27], FMA[12];
// 7.0 EBX.AVX2[5], AVX512F[16], EDX.AMX-BF16[22], AMX-TILE[24]; 7.1 EAX.AVX512_BF16[5]; XCR0 bits 1-2 (SSE, AVX
// state), 5-7 (opmask, ZMM) and 17-18 (AMX tile config and data). 0x80000002-4: the brand string.
#include "ddpm/util/cpu_features.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define DDPM_X86 1
#endif

namespace ddpm {
namespace {

#ifdef DDPM_X86
bool leaf(unsigned l, unsigned sub, unsigned r[4]) {
  if (l > __get_cpuid_max(l & 0x80000000u, nullptr)) return false;
  __cpuid_count(l, sub, r[0], r[1], r[2], r[3]);
  return true;
}
unsigned long long xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef DDPM_X86
  unsigned r[4] = {0, 0, 0, 0};
  if (!leaf(1, 0, r)) return f;
  const bool osxsave = (r[2] >> 27) & 1, fma = (r[2] >> 12) & 1;
  const unsigned long long x = osxsave ? xcr0() : 0;
  const bool avx_state = (x & 0x6) == 0x6, zmm_state = (x & 0xE6) == 0xE6, tile_state = (x & 0x60000) == 0x60000;
  unsigned r7[4] = {0, 0, 0, 0}, r71[4] = {0, 0, 0, 0};
  if (leaf(7, 0, r7)) {
    f.avx2 = avx_state && fma && ((r7[1] >> 5) & 1);
    f.avx512 = zmm_state && ((r7[1] >> 16) & 1);
    f.amx_bf16 = tile_state && ((r7[3] >> 22) & 1) && ((r7[3] >> 24) & 1);
    if (r7[0] >= 1 && leaf(7, 1, r71)) f.avx512_bf16 = f.avx512 && ((r71[0] >> 5) & 1);
  }
  char brand[49] = {0};
  unsigned b[4];
  for (unsigned i = 0; i < 3; ++i) {
    if (!leaf(0x80000002u + i, 0, b)) break;
    std::memcpy(brand + 16 * i, b, 16);
  }
  f.model = brand;
  const auto first = f.model.find_first_not_of(' ');
  f.model = first == std::string::npos ? "" : f.model.substr(first);
  while (!f.model.empty() && f.model.back() == ' ') f.model.pop_back();
#endif
  return f;
}

}  // namespace

std::string CpuFeatures::best() const {
  if (amx_bf16) return "amx_bf16";
  if (avx512_bf16) return "avx512_bf16";
  if (avx512) return "avx512";
  if (avx2) return "avx2";
  return "baseline";
}

std::string CpuFeatures::list() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(avx512, "avx512");
  add(avx512_bf16, "avx512_bf16");
  add(amx_bf16, "amx_bf16");
  return s.empty() ? "baseline" : s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    auto d = detect();
    // DDPM_CPU_ISA_MAX=avx2|avx512|baseline: behave as a CPU without the features above that level (tests of
    // the refusal and of the forced bf16 path on a machine that has bf16; like oneDNN's ONEDNN_MAX_CPU_ISA).
    if (const char* cap = std::getenv("DDPM_CPU_ISA_MAX")) {
      const std::string c = cap;
      if (c == "avx512") d.avx512_bf16 = d.amx_bf16 = false;
      if (c == "avx2" || c == "baseline") d.avx512 = d.avx512_bf16 = d.amx_bf16 = false;
      if (c == "baseline") d.avx2 = false;
    }
    return d;
  }();
  return f;
}

}  // namespace ddpm
