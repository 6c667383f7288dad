// test_winograd.cpp — the oneDNN Winograd 3×3 convolution of fp32 training (nn/winograd_conv.h): forward and all
// three gradients against an fp64 reference (NCHW and NHWC, square and not), the output layout, which convolutions
// it serves and which it leaves to LibTorch, the switch, and a UNet training step through it against LibTorch's
// direct convolution. On a CPU without AVX-512 (or a build without oneDNN) it checks that nothing takes the path.
#include "ddpm/nn/unet.h"
#include "ddpm/nn/weight_cast.h"
#include "ddpm/nn/winograd_conv.h"
#include "ddpm/util/config.h"
#include "ddpm/util/cpu_features.h"

#include "tensor_compare.h"

#include <gtest/gtest.h>

using namespace ddpm;
using ddpm::test::max_rel;

namespace {

constexpr auto kCL = at::MemoryFormat::ChannelsLast;

struct Grads {
  torch::Tensor y, gx, gw, gb;
};

// conv2d(x, w, b, pad 1) and the gradients of sum(y * r), in x's dtype, through `conv`.
template <class Conv>
Grads run(Conv conv, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0, const torch::Tensor& r) {
  auto x = x0.detach().clone().requires_grad_(true), w = w0.detach().clone().requires_grad_(true),
       b = b0.detach().clone().requires_grad_(true);
  auto y = conv(x, w, b);
  (y * r.to(y.scalar_type())).sum().backward();
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

}  // namespace

TEST(Winograd, AvailableExactlyOnAvx512) {
  // Compiled in by CMake wherever oneDNN 2.x is found (Debian: libdnnl-dev); on such a build it must switch on
  // with AVX-512 and off without.
  if (!cpu_features().avx512) EXPECT_FALSE(winograd_available());
  set_winograd_enabled(false);
  EXPECT_FALSE(winograd_available());
  set_winograd_enabled(true);
}

TEST(Winograd, MatchesFp64ReferenceForwardAndGradients) {
  if (!winograd_available()) GTEST_SKIP() << "no oneDNN Winograd here (needs AVX-512 and a build with libdnnl-dev)";
  struct Case {
    int64_t n, c, o, h, w;
    bool nhwc;
  };
  for (const Case k : {Case{2, 64, 64, 12, 12, true}, Case{3, 32, 48, 7, 9, false}, Case{1, 128, 16, 14, 14, true},
                       Case{2, 16, 32, 5, 5, false}}) {
    torch::manual_seed(3);
    auto x = torch::randn({k.n, k.c, k.h, k.w});
    if (k.nhwc) x = x.contiguous(kCL);
    auto w = torch::randn({k.o, k.c, 3, 3}) / std::sqrt(9.0 * k.c), b = torch::randn({k.o}) * 0.1;
    auto r = torch::randn({k.n, k.o, k.h, k.w});
    ASSERT_TRUE(winograd_applies(x, w, b, 1, 1, 1, 1));
    const auto win = run([](auto x, auto w, auto b) { return winograd_conv3x3(x, w, b); }, x, w, b, r);
    const auto ref = run([](auto x, auto w, auto b) { return torch::conv2d(x, w, b, 1, 1); },
                         x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64), r);
    const auto dir = run([](auto x, auto w, auto b) { return torch::conv2d(x, w, b, 1, 1); }, x, w, b, r);
    // F(4×4,3×3) in fp32: measured ≈1e-6 relative on these shapes (direct fp32: ≈3e-7); 2e-5 bounds both with
    // room while any indexing or transform error would show as O(1).
    const double tol = 2e-5;
    EXPECT_LT(max_rel(win.y, ref.y), tol) << k.c << "->" << k.o << " forward";
    EXPECT_LT(max_rel(win.gx, ref.gx), tol) << k.c << "->" << k.o << " grad x";
    EXPECT_LT(max_rel(win.gw, ref.gw), tol) << k.c << "->" << k.o << " grad w";
    EXPECT_LT(max_rel(win.gb, ref.gb), tol) << k.c << "->" << k.o << " grad b";
    std::printf("[winograd] %ld->%ld %ldx%ld %s: rel err fwd %.1e gx %.1e gw %.1e (direct fp32: %.1e %.1e %.1e)\n",
                (long)k.c, (long)k.o, (long)k.h, (long)k.w, k.nhwc ? "NHWC" : "NCHW", max_rel(win.y, ref.y),
                max_rel(win.gx, ref.gx), max_rel(win.gw, ref.gw), max_rel(dir.y, ref.y), max_rel(dir.gx, ref.gx),
                max_rel(dir.gw, ref.gw));
    // The output and the input gradient keep the input's layout.
    EXPECT_EQ(win.y.is_contiguous(kCL) && !win.y.is_contiguous(), k.nhwc);
    EXPECT_EQ(win.gx.is_contiguous(kCL) && !win.gx.is_contiguous(), k.nhwc);
  }
}

TEST(Winograd, ServesOnlyWhatItCan) {
  if (!winograd_available()) {
    EXPECT_FALSE(winograd_applies(torch::randn({1, 16, 8, 8}), torch::randn({16, 16, 3, 3}), torch::randn({16}), 1, 1, 1, 1));
    return;
  }
  auto x = torch::randn({1, 16, 8, 8}), w = torch::randn({16, 16, 3, 3}), b = torch::randn({16});
  EXPECT_TRUE(winograd_applies(x, w, b, 1, 1, 1, 1));
  EXPECT_FALSE(winograd_applies(x, w, b, 2, 1, 1, 1));                      // strided
  EXPECT_FALSE(winograd_applies(x, w, b, 1, 1, 2, 1));                      // dilated
  EXPECT_FALSE(winograd_applies(x, w, torch::Tensor(), 1, 1, 1, 1));        // no bias
  EXPECT_FALSE(winograd_applies(x, torch::randn({16, 16, 1, 1}), b, 1, 0, 1, 1));  // 1×1
  EXPECT_FALSE(winograd_applies(torch::randn({1, 8, 8, 8}), torch::randn({16, 8, 3, 3}), b, 1, 1, 1, 1));  // C = 8
  EXPECT_FALSE(winograd_applies(x.to(torch::kBFloat16), w, b, 1, 1, 1, 1));  // bf16
  set_winograd_enabled(false);
  EXPECT_FALSE(winograd_applies(x, w, b, 1, 1, 1, 1));
  set_winograd_enabled(true);
}

TEST(Winograd, UNetTrainingStepMatchesDirectConvolution) {
  // The fmnist-small network, NHWC fp32 as training runs it: loss and every parameter gradient with the Winograd
  // path on and off. Inference (no gradients) must not take it, so sampling stays bit-identical.
  torch::manual_seed(1);
  UNet net(preset_model("fmnist-small"));
  {
    // Fresh UNets end every residual branch at ~0 (scale 1e-10): give every weight a size so that every layer
    // contributes.
    torch::NoGradGuard ng;
    for (auto& p : net->parameters())
      if (p.dim() > 1) p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(p[0].numel())));
  }
  net->set_compute({Precision::fp32, true});
  auto x = torch::randn({4, 1, 28, 28}), t = torch::tensor({3, 250, 600, 999});
  auto step = [&](bool on) {
    set_winograd_enabled(on);
    net->zero_grad();
    auto loss = net->forward(x, t).pow(2).mean();
    loss.backward();
    std::vector<torch::Tensor> g;
    for (auto& p : net->parameters()) g.push_back(p.grad().clone());
    set_winograd_enabled(true);
    return std::make_pair(loss.item<double>(), g);
  };
  const auto [l_win, g_win] = step(true);
  const auto [l_dir, g_dir] = step(false);
  EXPECT_NEAR(l_win, l_dir, 1e-5 * std::abs(l_dir));
  // Against the largest gradient of the network: biases ahead of a GroupNorm have an exactly-zero gradient, which
  // both paths only reach up to rounding (≈1e-9), so a per-parameter relative error would compare noise.
  double scale = 0;
  for (const auto& g : g_dir) scale = std::max(scale, g.abs().max().item<double>());
  const auto names = net->named_parameters().keys();
  double worst = 0;
  bool differs = false;  // the Winograd path really ran: its rounding differs from the direct kernels'
  for (size_t i = 0; i < g_win.size(); ++i) {
    const double e = (g_win[i] - g_dir[i]).abs().max().item<double>() / scale;
    worst = std::max(worst, e);
    differs = differs || !torch::equal(g_win[i], g_dir[i]);
    EXPECT_LT(e, 1e-4) << names[i];
  }
  EXPECT_TRUE(differs);
  std::printf("[winograd] UNet step: loss %.9g vs %.9g, worst gradient difference %.1e of the largest gradient\n",
              l_win, l_dir, worst);
  torch::NoGradGuard ng;
  set_winograd_enabled(true);
  auto a = net->forward(x, t);
  set_winograd_enabled(false);
  auto d = net->forward(x, t);
  set_winograd_enabled(true);
  EXPECT_TRUE(torch::equal(a, d)) << "inference must keep the direct convolution";
}
