// winograd_bf16_layers.cpp — our bf16 Winograd F(2×2,3×3) (nn/winograd_bf16.h) against LibTorch's bf16 direct
// convolution (oneDNN, channels-last: what --precision bf16 calls otherwise), one layer at a time on the shapes of
// the `fmnist` UNet: forward, backward-data and backward-weights milliseconds, effective GFLOP/s
// (direct-convolution FLOPs), the weight transform's cost, and each path's relative error against fp64. The two paths alternate, REPS times each.
// Prints one JSON line per shape. Not a test. Usage: bench_winograd_bf16 [REPS] [BATCH] (threads: OMP_NUM_THREADS).
#include "ddpm/nn/winograd_bf16.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double rel_l2(const torch::Tensor& a, const torch::Tensor& ref) {
  return ((a.to(torch::kFloat64) - ref).norm() / ref.norm()).item<double>();
}
}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  const int64_t n = argc > 2 ? std::atoi(argv[2]) : 64;
  if (!ddpm::winograd_bf16_available()) {
    std::printf("{\"error\":\"this CPU has no AVX-512 BF16 without AMX (or DDPM_WINOGRAD=0): the path is off\"}\n");
    return 1;
  }
  torch::NoGradGuard ng;
  torch::manual_seed(0);
  const auto cl = at::MemoryFormat::ChannelsLast;
  struct Shape {
    int64_t ic, oc, h;
  };
  // fmnist: 64 channels at 28×28, 128 at 14×14 and 7×7; the decoder's inputs carry the skip concatenations.
  for (const Shape s : std::vector<Shape>{{64, 64, 28}, {128, 64, 28}, {128, 128, 14}, {256, 128, 14}, {128, 128, 7}, {256, 128, 7}}) {
    const auto x = torch::randn({n, s.ic, s.h, s.h}).to(torch::kBFloat16).contiguous(cl);
    const auto dy = torch::randn({n, s.oc, s.h, s.h}).to(torch::kBFloat16).contiguous(cl);
    const auto w = torch::randn({s.oc, s.ic, 3, 3}) / std::sqrt(9.0 * s.ic), b = torch::randn({s.oc}) * 0.1;
    const auto wb = w.to(torch::kBFloat16).contiguous(cl), bb = b.to(torch::kBFloat16);
    const auto u = ddpm::winograd_bf16_weights(w), ut = ddpm::winograd_bf16_weights(w.flip({2, 3}).transpose(0, 1));
    auto direct_fwd = [&] { return torch::conv2d(x, wb, bb, 1, 1); };
    auto direct_bwd = [&] {
      return std::get<0>(at::convolution_backward(dy, x, wb, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                                  {true, false, false}));
    };
    auto direct_bww = [&] {
      return std::get<1>(at::convolution_backward(dy, x, wb, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                                  {false, true, false}));
    };
    auto wino_bww = [&] { return ddpm::winograd_bf16_weight_grad(x, dy); };
    auto wino_fwd = [&] { return ddpm::winograd_bf16_conv3x3(x, u, b); };
    auto wino_bwd = [&] { return ddpm::winograd_bf16_conv3x3(dy, ut, torch::Tensor()); };
    double t[7] = {0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 2; i++) direct_fwd(), direct_bwd(), wino_fwd(), wino_bwd(), direct_bww(), wino_bww();  // warm-up
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      direct_fwd();
      double t1 = now();
      wino_fwd();
      double t2 = now();
      direct_bwd();
      double t3 = now();
      wino_bwd();
      double t4 = now();
      ddpm::winograd_bf16_weights(w);
      double t5 = now();
      direct_bww();
      double t6 = now();
      wino_bww();
      double t7 = now();
      t[0] += t1 - t0, t[1] += t2 - t1, t[2] += t3 - t2, t[3] += t4 - t3, t[4] += t5 - t4, t[5] += t6 - t5, t[6] += t7 - t6;
    }
    for (auto& v : t) v = v / reps * 1e3;
    const double gflop = 2.0 * n * s.oc * s.ic * 9 * s.h * s.h / 1e9;
    const auto ref = torch::conv2d(x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64), 1, 1);
    const auto ref_dw = std::get<1>(at::convolution_backward(dy.to(torch::kFloat64), x.to(torch::kFloat64),
                                                             w.to(torch::kFloat64), c10::nullopt, {1, 1}, {1, 1}, {1, 1},
                                                             false, {0, 0}, 1, {false, true, false}));
    std::printf("{\"batch\":%ld,\"in\":%ld,\"out\":%ld,\"hw\":%ld,\"direct_fwd_ms\":%.3f,\"winograd_fwd_ms\":%.3f,"
                "\"fwd_speedup\":%.2f,\"direct_bwd_data_ms\":%.3f,\"winograd_bwd_data_ms\":%.3f,\"bwd_data_speedup\":%.2f,"
                "\"direct_bwd_weights_ms\":%.3f,\"winograd_bwd_weights_ms\":%.3f,\"bwd_weights_speedup\":%.2f,"
                "\"direct_fwd_gflops\":%.0f,\"winograd_fwd_gflops\":%.0f,\"weight_transform_ms\":%.3f,"
                "\"direct_rel_err\":%.2e,\"winograd_rel_err\":%.2e,\"direct_dw_rel_err\":%.2e,\"winograd_dw_rel_err\":%.2e}\n",
                n, s.ic, s.oc, s.h, t[0], t[1], t[0] / t[1], t[2], t[3], t[2] / t[3], t[5], t[6], t[5] / t[6],
                gflop / t[0] * 1e3, gflop / t[1] * 1e3, t[4], rel_l2(direct_fwd(), ref), rel_l2(wino_fwd(), ref),
                rel_l2(direct_bww(), ref_dw), rel_l2(wino_bww(), ref_dw));
    std::fflush(stdout);
  }
}
