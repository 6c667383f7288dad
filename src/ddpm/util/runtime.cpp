// runtime.cpp — see runtime.h.
#include "ddpm/util/runtime.h"

#include "ddpm/nn/winograd_bf16.h"
#include "ddpm/nn/winograd_conv.h"
#include "ddpm/train/distributed.h"
#include "ddpm/util/cpu_features.h"
#include "ddpm/util/version.h"

#include <torch/version.h>

#include <c10/util/Logging.h>
#include <cstdlib>

#include <ATen/CPUGeneratorImpl.h>
#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>

#include <sstream>
#include <stdexcept>
#include <thread>

namespace ddpm {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int set_threads(int64_t n) {
  const int threads = n > 0 ? static_cast<int>(n) : available_cores();
  torch::set_num_threads(threads);
  single_threaded_blas();
  return threads;
}

void single_threaded_blas() {
  // Looked up at run time: the BLAS under LibTorch is OpenBLAS on Debian, MKL or none in other builds.
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
}

void tune_allocator() {
#ifdef M_MMAP_THRESHOLD
  // Serve blocks up to 32 MiB (glibc's largest accepted threshold; it rejects more) from the heap instead of
  // fresh mmaps, and do not give freed heap back to the OS.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT32_MAX);
#endif
}

void quiet_library_logs() {
  if (const char* v = std::getenv("DDPM_LIBRARY_LOGS"); v && std::string(v) == "1") return;
#ifdef C10_USE_GLOG
  FLAGS_minloglevel = 3;  // glog: FATAL only
#else
  FLAGS_caffe2_log_level = 3;  // c10's own logger: FATAL only
#endif
}

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw std::runtime_error("--device cuda: this build or machine has no CUDA device (use --device cpu)");
    return torch::kCUDA;
  }
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  throw std::runtime_error("unknown device '" + name + "' (expected auto, cpu or cuda)");
}

torch::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

uint64_t mix_seed(uint64_t seed, uint64_t counter, uint64_t stream) {
  auto splitmix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  return splitmix(splitmix(splitmix(seed) ^ counter) ^ (stream * 0xd1b54a32d192ed03ull));
}

std::string build_description() {
  std::ostringstream os;
  os << "ddpm " << version() << "\n";
  os << "LibTorch " << TORCH_VERSION << "\n";
  if (at::hasCUDA()) {
    os << "CUDA: built in, " << torch::cuda::device_count() << " device(s) visible\n";
  } else {
    os << "CUDA: not built in (CPU only)\n";
  }
  const auto& cpu = cpu_features();
  os << "CPU: " << (cpu.model.empty() ? "unknown model" : cpu.model) << "; ISA " << cpu.list() << "; bf16 "
     << (cpu.native_bf16() ? "native (--precision bf16 pays)" : "emulated (--precision bf16 is refused)") << "\n";
  os << "fp32 training 3x3 convolutions: "
     << (winograd_available() ? "oneDNN Winograd (AVX-512; DDPM_WINOGRAD=0: direct)" : "direct (LibTorch/oneDNN)") << "\n";
  os << "bf16 3x3 convolutions: "
     << (winograd_bf16_available()
             ? "Winograd F(2x2,3x3) (forward, backward-data; AVX-512 BF16 without AMX; DDPM_WINOGRAD=0: direct)"
             : "direct (LibTorch/oneDNN)")
     << "\n";
  os << "c10d backends:" << (have_gloo() ? " gloo" : "") << (have_nccl() ? " nccl" : "")
     << (!have_gloo() && !have_nccl() ? " none (single process only)" : "");
  return os.str();
}

}  // namespace ddpm
