// winograd_conv.cpp — see winograd_conv.h. One plan per (N, C, O, H, W): oneDNN's three Winograd primitives with
// their blocked (nChw16c) buffers; LibTorch tensors enter and leave through reorders (≈0.1–0.4 ms each at these
// sizes, against 5–25 ms saved per pass).
#include "ddpm/nn/winograd_conv.h"

#include "ddpm/util/cpu_features.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#if defined(DDPM_HAVE_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#if DNNL_VERSION_MAJOR != 2
#undef DDPM_HAVE_ONEDNN  // oneDNN 3 dropped the op descriptors used here (and its f32 Winograd)
#endif
#endif

namespace ddpm {

namespace {
std::atomic<int> g_enabled{-1};  // -1: not yet read from the environment
}

void set_winograd_enabled(bool on) { g_enabled = on ? 1 : 0; }

bool winograd_enabled() {
  if (g_enabled < 0) {
    const char* e = std::getenv("DDPM_WINOGRAD");
    g_enabled = (e && std::strcmp(e, "0") == 0) ? 0 : 1;
  }
  return g_enabled == 1;
}

bool winograd_available() {
#if defined(DDPM_HAVE_ONEDNN)
  return winograd_enabled() && cpu_features().avx512;
#else
  return false;
#endif
}

#if defined(DDPM_HAVE_ONEDNN)
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

// The three primitives of one shape and the blocked buffers they work in.
struct Plan {
  dnnl::convolution_forward::primitive_desc fpd;
  dnnl::convolution_backward_data::primitive_desc bdpd;
  dnnl::convolution_backward_weights::primitive_desc bwpd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
};

using Key = std::array<int64_t, 5>;  // N, C, O, H, W

// nullptr where oneDNN has no Winograd kernel for the shape (e.g. a CPU it does not support).
std::shared_ptr<Plan> plan_for(const Key& k) {
  thread_local std::map<Key, std::shared_ptr<Plan>> plans;
  auto it = plans.find(k);
  if (it != plans.end()) return it->second;
  std::shared_ptr<Plan> p;
  try {
    const memory::dims src{k[0], k[1], k[3], k[4]}, wei{k[2], k[1], 3, 3}, bia{k[2]}, dst{k[0], k[2], k[3], k[4]};
    const memory::dims one{1, 1};
    const auto sm = memory::desc(src, dt::f32, tag::any), wm = memory::desc(wei, dt::f32, tag::any),
               bm = memory::desc(bia, dt::f32, tag::x), dm = memory::desc(dst, dt::f32, tag::any);
    const auto alg = dnnl::algorithm::convolution_winograd;
    auto fpd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, sm, wm, bm, dm, one, one, one), engine());
    auto bdpd = dnnl::convolution_backward_data::primitive_desc(
        dnnl::convolution_backward_data::desc(alg, sm, wm, dm, one, one, one), engine(), fpd);
    auto bwpd = dnnl::convolution_backward_weights::primitive_desc(
        dnnl::convolution_backward_weights::desc(alg, sm, wm, bm, dm, one, one, one), engine(), fpd);
    p = std::make_shared<Plan>(Plan{fpd, bdpd, bwpd, dnnl::convolution_forward(fpd),
                                    dnnl::convolution_backward_data(bdpd), dnnl::convolution_backward_weights(bwpd)});
  } catch (const dnnl::error&) {
    p = nullptr;  // unimplemented for this shape or CPU: the caller keeps torch::conv2d
  }
  plans.emplace(k, p);
  return p;
}

// A LibTorch activation [N,C,H,W] as oneDNN memory in its own layout (NCHW or NHWC; others are made NCHW).
struct Wrapped {
  torch::Tensor t;
  memory m;
};
Wrapped wrap(const torch::Tensor& x) {
  torch::Tensor t = x;
  tag tg = tag::nchw;
  if (!x.is_contiguous()) {
    if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) tg = tag::nhwc;
    else t = x.contiguous();
  }
  const memory::dims d{t.size(0), t.size(1), t.size(2), t.size(3)};
  return {t, memory(memory::desc(d, dt::f32, tg), engine(), t.data_ptr())};
}

// An empty [N,C,H,W] tensor in `like`'s layout.
torch::Tensor empty_like_layout(const torch::Tensor& like, int64_t c) {
  const bool cl = !like.is_contiguous() && like.is_contiguous(at::MemoryFormat::ChannelsLast);
  return torch::empty({like.size(0), c, like.size(2), like.size(3)},
                      like.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
}

// `from` in the layout `want` (the same memory when it already is).
memory to_desc(const memory& from, const memory::desc& want) {
  if (from.get_desc() == want) return from;
  memory to(want, engine());
  dnnl::reorder(from, to).execute(stream(), const_cast<memory&>(from), to);
  return to;
}
void copy_into(const memory& from, memory& to) {
  if (from.get_desc() == to.get_desc()) {
    std::memcpy(to.get_data_handle(), from.get_data_handle(), from.get_desc().get_size());
    return;
  }
  dnnl::reorder(from, to).execute(stream(), const_cast<memory&>(from), to);
}

memory weights_oihw(const torch::Tensor& w) {  // w: [O,C,3,3] contiguous
  return memory(memory::desc({w.size(0), w.size(1), 3, 3}, dt::f32, tag::oihw), engine(), w.data_ptr());
}

Key key_of(const torch::Tensor& x, const torch::Tensor& w) {
  return {x.size(0), x.size(1), w.size(0), x.size(2), x.size(3)};
}

struct WinogradConvFn : torch::autograd::Function<WinogradConvFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    const auto p = plan_for(key_of(x, w));
    TORCH_CHECK(p, "winograd_conv3x3: no oneDNN Winograd kernel for this shape (check winograd_applies first)");
    const auto wc = w.contiguous(), bc = b.contiguous();
    ctx->save_for_backward({x, wc});
    auto in = wrap(x);
    auto y = empty_like_layout(x, w.size(0));  // [N,O,H,W]
    auto out = wrap(y);
    auto src = to_desc(in.m, p->fpd.src_desc());
    auto wei = to_desc(weights_oihw(wc), p->fpd.weights_desc());
    memory bias(p->fpd.bias_desc(), engine(), bc.data_ptr());
    memory dst = out.m.get_desc() == p->fpd.dst_desc() ? out.m : memory(p->fpd.dst_desc(), engine());
    p->fwd.execute(stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}});
    copy_into(dst, out.m);
    stream().wait();
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];  // contiguous [O,C,3,3]
    const auto p = plan_for(key_of(x, w));
    TORCH_CHECK(p, "winograd_conv3x3: the plan of a shape seen in forward is missing");
    auto go = wrap(grads[0]);  // [N,O,H,W]
    torch::Tensor gx, gw, gb;
    memory diff_dst_blocked;  // the gradient reordered once when both passes want it in the same layout
    auto diff_dst_as = [&](const memory::desc& want) {
      if (!diff_dst_blocked || diff_dst_blocked.get_desc() != want) diff_dst_blocked = to_desc(go.m, want);
      return diff_dst_blocked;
    };
    if (ctx->needs_input_grad(0)) {
      auto diff_dst = diff_dst_as(p->bdpd.diff_dst_desc());
      auto wei = to_desc(weights_oihw(w), p->bdpd.weights_desc());
      gx = empty_like_layout(x, x.size(1));  // [N,C,H,W]
      auto gxm = wrap(gx);
      memory diff_src = gxm.m.get_desc() == p->bdpd.diff_src_desc() ? gxm.m : memory(p->bdpd.diff_src_desc(), engine());
      p->bwd_data.execute(stream(), {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, diff_src}});
      copy_into(diff_src, gxm.m);
    }
    if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
      auto in = wrap(x);
      auto src = to_desc(in.m, p->bwpd.src_desc());
      auto diff_dst = diff_dst_as(p->bwpd.diff_dst_desc());
      gw = torch::empty(w.sizes(), w.options());  // [O,C,3,3]
      gb = torch::empty({w.size(0)}, w.options());  // [O]
      auto gwm = weights_oihw(gw);
      memory diff_wei = gwm.get_desc() == p->bwpd.diff_weights_desc() ? gwm : memory(p->bwpd.diff_weights_desc(), engine());
      memory diff_bias(p->bwpd.diff_bias_desc(), engine(), gb.data_ptr());
      p->bwd_weights.execute(stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst},
                                        {DNNL_ARG_DIFF_WEIGHTS, diff_wei}, {DNNL_ARG_DIFF_BIAS, diff_bias}});
      copy_into(diff_wei, gwm);
    }
    stream().wait();
    return {gx, gw, gb};
  }
};

}  // namespace
#endif

bool winograd_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t stride,
                      int64_t padding, int64_t dilation, int64_t groups) {
#if defined(DDPM_HAVE_ONEDNN)
  if (!winograd_available()) return false;
  if (stride != 1 || padding != 1 || dilation != 1 || groups != 1 || !b.defined()) return false;
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32 || w.scalar_type() != torch::kFloat32 ||
      b.scalar_type() != torch::kFloat32 || x.dim() != 4 || w.dim() != 4)
    return false;
  if (w.size(2) != 3 || w.size(3) != 3 || w.size(1) != x.size(1) || x.size(1) % 16 || w.size(0) % 16) return false;
  return plan_for(key_of(x, w)) != nullptr;
#else
  (void)x, (void)w, (void)b, (void)stride, (void)padding, (void)dilation, (void)groups;
  return false;
#endif
}

torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
#if defined(DDPM_HAVE_ONEDNN)
  return WinogradConvFn::apply(x, w, b);
#else
  (void)x, (void)w, (void)b;
  TORCH_CHECK(false, "winograd_conv3x3: this build has no oneDNN (install libdnnl-dev and rebuild)");
#endif
}

}  // namespace ddpm
