// conv_layers.cpp — oneDNN fp32 3×3 convolution, one pass at a time, on the shapes of the `fmnist` UNet: the
// direct kernels in NHWC (what LibTorch 1.13 calls for channels-last), the direct kernels in oneDNN's own blocked
// layout, and Winograd F(4×4,3×3) (what nn/winograd_conv.h uses for fp32 training). Prints one JSON line per
// shape and algorithm: milliseconds and effective GFLOP/s (direct-convolution FLOPs) of forward, backward-data
// and backward-weights, and the cost of one NHWC → blocked reorder of the input.
// Not a test: built as bench_conv_layers where CMake finds oneDNN 2.x. Usage: bench_conv_layers [REPS] [BATCH]
// (threads: OMP_NUM_THREADS).
#include <oneapi/dnnl/dnnl.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class F>
double ms(F f, int reps) {
  f();
  f();
  const double t0 = now();
  for (int i = 0; i < reps; i++) f();
  return (now() - t0) / reps * 1e3;
}
void fill(memory& m, int mod, float step) {
  auto* p = static_cast<float*>(m.get_data_handle());
  for (size_t i = 0; i < m.get_desc().get_size() / sizeof(float); i++) p[i] = static_cast<float>(i % mod) * step;
}
}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  const int n = argc > 2 ? std::atoi(argv[2]) : 64;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  struct Shape {
    int ic, oc, h;
  };
  // fmnist: 64 channels at 28×28, 128 at 14×14 and 7×7; the decoder's inputs carry the skip concatenations.
  const std::vector<Shape> shapes = {{64, 64, 28}, {128, 64, 28}, {128, 128, 14}, {256, 128, 14}, {128, 128, 7}, {256, 128, 7}};
  const char* names[] = {"direct_nhwc", "direct_blocked", "winograd"};
  for (const auto& sh : shapes) {
    const memory::dims src{n, sh.ic, sh.h, sh.h}, wei{sh.oc, sh.ic, 3, 3}, bia{sh.oc}, dst{n, sh.oc, sh.h, sh.h}, one{1, 1};
    const double gflop = 2.0 * n * sh.oc * sh.ic * 9 * sh.h * sh.h / 1e9;
    for (int v = 0; v < 3; v++) {
      const auto alg = v == 2 ? algorithm::convolution_winograd : algorithm::convolution_direct;
      const tag at = v == 0 ? tag::nhwc : tag::any;
      const auto sm = memory::desc(src, dt::f32, at), wm = memory::desc(wei, dt::f32, tag::any),
                 bm = memory::desc(bia, dt::f32, tag::x), dm = memory::desc(dst, dt::f32, at);
      try {
        auto fpd = convolution_forward::primitive_desc(
            convolution_forward::desc(prop_kind::forward_training, alg, sm, wm, bm, dm, one, one, one), eng);
        memory S(fpd.src_desc(), eng), W(fpd.weights_desc(), eng), B(fpd.bias_desc(), eng), D(fpd.dst_desc(), eng);
        fill(S, 7, 0.1f);
        fill(W, 5, 0.01f);
        fill(B, 3, 0.1f);
        convolution_forward f(fpd);
        const double tf = ms([&] { f.execute(s, {{DNNL_ARG_SRC, S}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_BIAS, B}, {DNNL_ARG_DST, D}}); s.wait(); }, reps);
        auto bdpd = convolution_backward_data::primitive_desc(convolution_backward_data::desc(alg, sm, wm, dm, one, one, one), eng, fpd);
        memory DS(bdpd.diff_src_desc(), eng), DD(bdpd.diff_dst_desc(), eng), W2(bdpd.weights_desc(), eng);
        fill(DD, 11, 0.01f);
        fill(W2, 5, 0.01f);
        convolution_backward_data bd(bdpd);
        const double tbd = ms([&] { bd.execute(s, {{DNNL_ARG_DIFF_DST, DD}, {DNNL_ARG_WEIGHTS, W2}, {DNNL_ARG_DIFF_SRC, DS}}); s.wait(); }, reps);
        auto bwpd = convolution_backward_weights::primitive_desc(
            convolution_backward_weights::desc(alg, sm, wm, bm, dm, one, one, one), eng, fpd);
        memory S3(bwpd.src_desc(), eng), DD3(bwpd.diff_dst_desc(), eng), DW(bwpd.diff_weights_desc(), eng), DB(bwpd.diff_bias_desc(), eng);
        fill(S3, 7, 0.1f);
        fill(DD3, 11, 0.01f);
        convolution_backward_weights bw(bwpd);
        const double tbw = ms([&] {
          bw.execute(s, {{DNNL_ARG_SRC, S3}, {DNNL_ARG_DIFF_DST, DD3}, {DNNL_ARG_DIFF_WEIGHTS, DW}, {DNNL_ARG_DIFF_BIAS, DB}});
          s.wait();
        }, reps);
        double tro = 0;
        if (v > 0) {
          memory X(memory::desc(src, dt::f32, tag::nhwc), eng);
          fill(X, 7, 0.1f);
          reorder r(X, S);
          tro = ms([&] { r.execute(s, X, S); s.wait(); }, reps);
        }
        std::printf("{\"batch\":%d,\"in\":%d,\"out\":%d,\"hw\":%d,\"algo\":\"%s\",\"fwd_ms\":%.3f,\"bwd_data_ms\":%.3f,"
                    "\"bwd_weights_ms\":%.3f,\"total_ms\":%.3f,\"fwd_gflops\":%.0f,\"bwd_data_gflops\":%.0f,"
                    "\"bwd_weights_gflops\":%.0f,\"reorder_in_ms\":%.3f,\"impl\":\"%s\"}\n",
                    n, sh.ic, sh.oc, sh.h, names[v], tf, tbd, tbw, tf + tbd + tbw, gflop / tf * 1e3, gflop / tbd * 1e3,
                    gflop / tbw * 1e3, tro, fpd.impl_info_str());
      } catch (const dnnl::error& e) {
        std::printf("{\"batch\":%d,\"in\":%d,\"out\":%d,\"hw\":%d,\"algo\":\"%s\",\"error\":\"%s\"}\n", n, sh.ic, sh.oc,
                    sh.h, names[v], e.what());
      }
      std::fflush(stdout);
    }
  }
}
