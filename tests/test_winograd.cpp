// test_winograd.cpp — the oneDNN Winograd 3×3 convolution of fp32 training (nn/winograd_conv.h): forward and all
// three gradients against an fp64 reference (NCHW and NHWC, square and not), the output layout, which convolutions
// it serves and which it leaves to LibTorch, the switch, and a UNet training step through it against LibTorch's
// direct convolution. On a CPU without AVX-512 (or a build without oneDNN) it checks that nothing takes the path.
// Also our bf16 Winograd F(2×2,3×3) of inference (nn/winograd_bf16.h): against an fp64 reference next to the direct
// bf16 convolution, batch independence, which convolutions it serves, and WeightCast's cache of its weights.
#include "ddpm/nn/unet.h"
#include "ddpm/nn/weight_cast.h"
#include "ddpm/nn/winograd_bf16.h"
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
  // (Without AVX-512 both runs are the direct path: nothing to compare.)
  if (!winograd_available()) GTEST_SKIP() << "no oneDNN Winograd here (needs AVX-512 and a build with libdnnl-dev)";
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

// ---- bf16 inference: our Winograd F(2×2,3×3) (nn/winograd_bf16.h) ----

namespace {
// fp64 convolution of the bf16 input with the fp32 weights: what both bf16 paths approximate.
torch::Tensor conv_ref(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::conv2d(x.to(torch::kFloat64), w.to(torch::kFloat64), b.defined() ? b.to(torch::kFloat64) : b, 1, 1);
}
double rel_l2(const torch::Tensor& a, const torch::Tensor& ref) {
  return ((a.to(torch::kFloat64) - ref).norm() / ref.norm()).item<double>();
}
}  // namespace

TEST(WinogradBf16, AvailableExactlyWithAvx512Bf16WithoutAmx) {
  const auto& f = cpu_features();
#if defined(__x86_64__)
  EXPECT_EQ(winograd_bf16_available(), f.avx512_bf16 && !f.amx_bf16);
#else
  EXPECT_FALSE(winograd_bf16_available());
#endif
  set_winograd_enabled(false);
  EXPECT_FALSE(winograd_bf16_available());
  set_winograd_enabled(true);
}

TEST(WinogradBf16, MatchesFp64ReferenceNearTheDirectBf16Error) {
  if (!winograd_bf16_available()) GTEST_SKIP() << "needs AVX-512 BF16 without AMX";
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  struct Case {
    int64_t n, c, o, h, w;
  };
  // Odd and even sizes (the last tile row/column cropped), one pixel, channel counts that leave 1–4 column
  // blocks of 16 in the last group of 64, more than one tile block (60 tiles) per image, no bias.
  for (const Case k : {Case{2, 16, 16, 8, 8}, Case{3, 32, 48, 7, 9}, Case{1, 16, 80, 1, 1}, Case{2, 64, 64, 28, 28},
                       Case{1, 48, 112, 5, 6}, Case{4, 128, 128, 14, 14}}) {
    auto x = torch::randn({k.n, k.c, k.h, k.w}).to(torch::kBFloat16).contiguous(kCL);
    auto w = torch::randn({k.o, k.c, 3, 3}) / std::sqrt(9.0 * k.c), b = torch::randn({k.o}) * 0.1;
    ASSERT_TRUE(winograd_bf16_applies(x, w, b, 1, 1, 1, 1));
    const auto y = winograd_bf16_conv3x3(x, winograd_bf16_weights(w), b);
    ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{k.n, k.o, k.h, k.w}));
    EXPECT_TRUE(y.is_contiguous(kCL));
    const auto ref = conv_ref(x, w, b);
    const auto direct = torch::conv2d(x, w.to(torch::kBFloat16).contiguous(kCL), b.to(torch::kBFloat16), 1, 1);
    const double e = rel_l2(y, ref), e_direct = rel_l2(direct, ref), m = max_rel(y, ref);
    std::printf("[winograd bf16] %ldx%ld->%ld %ldx%ld: rel L2 err %.2e (direct bf16 %.2e), max %.2e\n", k.n, k.c, k.o,
                k.h, k.w, e, e_direct, m);
    // bf16 keeps 8 significant bits: the direct convolution's error is ≈2e-3, two more roundings (U and V) make
    // ≈4.5e-3; a wrong transform or tile index gives O(1).
    EXPECT_LT(e, 8e-3);
    EXPECT_LT(e, 4 * e_direct + 1e-3);
    EXPECT_LT(m, 3e-2);
  }
  // No bias.
  auto x = torch::randn({2, 32, 6, 6}).to(torch::kBFloat16).contiguous(kCL);
  auto w = torch::randn({32, 32, 3, 3}) / std::sqrt(9.0 * 32);
  const auto y = winograd_bf16_conv3x3(x, winograd_bf16_weights(w), torch::Tensor());
  EXPECT_LT(rel_l2(y, conv_ref(x, w, torch::Tensor())), 8e-3);
}

TEST(WinogradBf16, WeightGradientMatchesFp64OnOddSizes) {
  // winograd_bf16_weight_grad alone, also where the training path does not call it: odd sizes (cropped tiles, an
  // odd number of tiles: the last pair half empty), one image of 1×1, 7×7, more than one block of tiles.
  if (!winograd_bf16_available()) GTEST_SKIP() << "needs AVX-512 BF16 without AMX";
  torch::NoGradGuard ng;
  torch::manual_seed(7);
  struct Case {
    int64_t n, c, o, h, w;
  };
  for (const Case k : {Case{1, 16, 16, 1, 1}, Case{2, 32, 48, 7, 7}, Case{3, 16, 32, 9, 5}, Case{2, 48, 80, 28, 28}}) {
    auto x = torch::randn({k.n, k.c, k.h, k.w}).to(torch::kBFloat16).contiguous(kCL);
    auto dy = torch::randn({k.n, k.o, k.h, k.w}).to(torch::kBFloat16).contiguous(kCL);
    auto w = torch::zeros({k.o, k.c, 3, 3}, torch::kFloat64);
    const auto ref = std::get<1>(at::convolution_backward(dy.to(torch::kFloat64), x.to(torch::kFloat64), w, c10::nullopt,
                                                          {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1, {false, true, false}));
    const auto dw = winograd_bf16_weight_grad(x, dy);
    ASSERT_EQ(dw.scalar_type(), torch::kFloat32);
    ASSERT_EQ(dw.sizes(), ref.sizes());
    const double e = rel_l2(dw, ref);
    std::printf("[winograd bf16 dw] %ldx%ld->%ld %ldx%ld: rel L2 err %.2e\n", k.n, k.c, k.o, k.h, k.w, e);
    EXPECT_LT(e, 8e-3);
  }
}

TEST(WinogradBf16, EachImageIndependentOfTheBatch) {
  // A tile is one GEMM row: an image's output is bit-identical alone and in any batch (sampling's promise).
  if (!winograd_bf16_available()) GTEST_SKIP() << "needs AVX-512 BF16 without AMX";
  torch::NoGradGuard ng;
  torch::manual_seed(4);
  auto x = torch::randn({5, 32, 11, 11}).to(torch::kBFloat16).contiguous(kCL);
  auto w = torch::randn({64, 32, 3, 3}) * 0.1, b = torch::randn({64});
  const auto u = winograd_bf16_weights(w);
  const auto all = winograd_bf16_conv3x3(x, u, b);
  for (int64_t i = 0; i < 5; i++) {
    const auto one = winograd_bf16_conv3x3(x.slice(0, i, i + 1).contiguous(kCL), u, b);
    EXPECT_TRUE(torch::equal(one, all.slice(0, i, i + 1))) << "image " << i;
  }
}

TEST(WinogradBf16, ServesOnlyBf16ChannelsLast3x3Stride1) {
  const auto x = torch::randn({1, 16, 8, 8}).to(torch::kBFloat16).contiguous(kCL);
  const auto w = torch::randn({16, 16, 3, 3}), b = torch::randn({16});
  if (!winograd_bf16_available()) {
    EXPECT_FALSE(winograd_bf16_applies(x, w, b, 1, 1, 1, 1));
    return;
  }
  EXPECT_TRUE(winograd_bf16_applies(x, w, b, 1, 1, 1, 1));
  EXPECT_TRUE(winograd_bf16_applies(x, w, torch::Tensor(), 1, 1, 1, 1));                          // no bias
  EXPECT_FALSE(winograd_bf16_applies(x, w, b, 2, 1, 1, 1));                                       // strided
  EXPECT_FALSE(winograd_bf16_applies(x, w, b, 1, 1, 2, 1));                                       // dilated
  EXPECT_FALSE(winograd_bf16_applies(x, w, b, 1, 1, 1, 2));                                       // grouped
  EXPECT_FALSE(winograd_bf16_applies(x, torch::randn({16, 16, 1, 1}), b, 1, 0, 1, 1));            // 1×1
  EXPECT_FALSE(winograd_bf16_applies(x.to(torch::kFloat32), w, b, 1, 1, 1, 1));                   // fp32
  EXPECT_FALSE(winograd_bf16_applies(x.contiguous(), w, b, 1, 1, 1, 1));                          // NCHW
  EXPECT_FALSE(winograd_bf16_applies(torch::randn({1, 8, 8, 8}).to(torch::kBFloat16).contiguous(kCL),
                                     torch::randn({16, 8, 3, 3}), b, 1, 1, 1, 1));               // C = 8
  EXPECT_FALSE(winograd_bf16_applies(x, torch::randn({8, 16, 3, 3}), torch::randn({8}), 1, 1, 1, 1));  // O = 8
  set_winograd_enabled(false);
  EXPECT_FALSE(winograd_bf16_applies(x, w, b, 1, 1, 1, 1));
  set_winograd_enabled(true);
}

TEST(WinogradBf16, WeightCastUsesItForInferenceAndFollowsWeightUpdates) {
  // WeightCast::conv (the UNet's and the classifier's convolutions): bf16 inference goes through the Winograd
  // path with cached transformed weights; an in-place weight update (an optimizer step, EMA swap) refreshes them;
  // with gradients recorded it takes the differentiable version.
  if (!winograd_bf16_available()) GTEST_SKIP() << "needs AVX-512 BF16 without AMX";
  torch::manual_seed(5);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(32, 48, 3).padding(1));
  WeightCast wc;
  const auto x = torch::randn({2, 32, 9, 9}).to(torch::kBFloat16).contiguous(kCL);
  torch::Tensor y0, y1;
  {
    torch::NoGradGuard ng;
    y0 = wc.conv(conv, x);
    EXPECT_TRUE(torch::equal(y0, winograd_bf16_conv3x3(x, winograd_bf16_weights(conv->weight), conv->bias)));
    conv->weight.mul_(0.5);
    y1 = wc.conv(conv, x);
    EXPECT_TRUE(torch::equal(y1, winograd_bf16_conv3x3(x, winograd_bf16_weights(conv->weight), conv->bias)));
    EXPECT_FALSE(torch::equal(y0, y1));
  }
  const auto yg = wc.conv(conv, x);  // gradients recorded: the differentiable version, same forward values
  EXPECT_TRUE(yg.requires_grad());
  EXPECT_TRUE(torch::equal(yg.detach(), y1));
}

TEST(WinogradBf16, TrainingGradientsMatchFp64ReferenceNearTheDirectBf16Error) {
  // bf16 training: y, dL/dx and dL/dw through Winograd, dL/db in fp32; every one against fp64 and next to
  // LibTorch's direct bf16 convolution with the same bf16 input. Odd sizes (cropped tiles, an odd tile count).
  if (!winograd_bf16_available()) GTEST_SKIP() << "needs AVX-512 BF16 without AMX";
  torch::manual_seed(6);
  struct Case {
    int64_t n, c, o, h, w;
  };
  // 7×9 and 256→128 take LibTorch's backward-weights, the others ours (winograd_bf16_weight_grad).
  for (const Case k : {Case{2, 32, 48, 7, 9}, Case{2, 64, 64, 28, 28}, Case{3, 128, 64, 14, 14}, Case{1, 32, 16, 15, 17},
                       Case{1, 256, 128, 14, 14}}) {
    auto x = torch::randn({k.n, k.c, k.h, k.w}).to(torch::kBFloat16).contiguous(kCL);
    auto w = torch::randn({k.o, k.c, 3, 3}) / std::sqrt(9.0 * k.c), b = torch::randn({k.o}) * 0.1;
    auto r = torch::randn({k.n, k.o, k.h, k.w}).to(torch::kBFloat16).to(torch::kFloat32);
    const auto ref = run([](auto x, auto w, auto b) { return torch::conv2d(x, w, b, 1, 1); }, x.to(torch::kFloat64),
                         w.to(torch::kFloat64), b.to(torch::kFloat64), r.to(torch::kFloat64));
    const auto win = run([](auto x, auto w, auto b) { return winograd_bf16_conv3x3_train(x, w, b); }, x, w, b, r);
    const auto dir = run([](auto x, auto w, auto b) {
      return torch::conv2d(x, w.to(torch::kBFloat16).contiguous(kCL), b.to(torch::kBFloat16), 1, 1);
    }, x, w, b, r);
    ASSERT_EQ(win.gx.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(win.gw.scalar_type(), torch::kFloat32);  // fp32 master weights get fp32 gradients
    ASSERT_EQ(win.gb.scalar_type(), torch::kFloat32);
    const double ey = rel_l2(win.y, ref.y), ex = rel_l2(win.gx, ref.gx), ew = rel_l2(win.gw, ref.gw), eb = rel_l2(win.gb, ref.gb);
    std::printf("[winograd bf16 train] %ldx%ld->%ld %ldx%ld: rel L2 err y %.1e gx %.1e gw %.1e gb %.1e "
                "(direct bf16: %.1e %.1e %.1e %.1e)\n", k.n, k.c, k.o, k.h, k.w, ey, ex, ew, eb, rel_l2(dir.y, ref.y),
                rel_l2(dir.gx, ref.gx), rel_l2(dir.gw, ref.gw), rel_l2(dir.gb, ref.gb));
    EXPECT_LT(ey, 8e-3);
    EXPECT_LT(ex, 8e-3);
    EXPECT_LT(ex, 4 * rel_l2(dir.gx, ref.gx) + 1e-3);
    EXPECT_LT(ew, 8e-3);
    EXPECT_LT(ew, 4 * rel_l2(dir.gw, ref.gw) + 1e-3);
    EXPECT_LT(eb, 8e-3);
  }
}
