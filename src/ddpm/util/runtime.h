// runtime.h — process-level set-up shared by the CLI, tests and benchmarks: thread count, device choice,
// seed derivation. Not here: anything about models or data.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace ddpm {

// Cores this process may run on (sched_getaffinity), at least 1.
int available_cores();
// Sets torch's intra-op threads: n > 0 as given, 0 = available_cores() (Debian's libtorch starts with 1), and
// single_threaded_blas().
int set_threads(int64_t n);
// OpenBLAS's own thread pool spins (sched_yield) against torch's OpenMP threads: the GEMMs it gets here are small
// (time-embedding linears, attention in fp32) and run inside torch's parallel regions. One BLAS thread measured
// fmnist sampling +20% fp32 and +27% bf16 on 2 cores (Xeon, AMX). A no-op where the BLAS is not OpenBLAS.
void single_threaded_blas();
// glibc keeps freed memory for reuse instead of unmapping every large block: LibTorch frees and reallocates
// activation-sized buffers on every op, and returning them to the OS costs a page fault per 4 KiB on the next
// use (measured on 2 cores: out-of-place SiLU on [64,64,28,28] 11.4 ms -> 4.6 ms; fmnist training step +12%). Call once at start-up.
void tune_allocator();
// LibTorch's own log lines (c10d's glog ERRORs about a closed socket, say) repeat what the exception that
// follows says; the CLI reports the exception in one line and silences them (DDPM_LIBRARY_LOGS=1 keeps them).
void quiet_library_logs();
// "auto" -> cuda if available else cpu; "cuda" without CUDA throws.
torch::Device resolve_device(const std::string& name);
// A fresh CPU generator with the given seed.
torch::Generator make_generator(uint64_t seed);
// Derives independent seeds for (seed, counter, stream) — SplitMix64 mixing — so every random draw of a step
// is a pure function of the run's seed and the step number (exact resume, rank-independent batches).
uint64_t mix_seed(uint64_t seed, uint64_t counter, uint64_t stream);

}  // namespace ddpm
