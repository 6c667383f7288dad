// weight_cast.cpp — see weight_cast.h.
#include "ddpm/nn/weight_cast.h"

#include "ddpm/nn/winograd_bf16.h"
#include "ddpm/nn/winograd_conv.h"
#include "ddpm/util/cpu_features.h"

namespace ddpm {

template <class Make>
const torch::Tensor& WeightCast::cached(std::unordered_map<const void*, Entry>& cache, const torch::Tensor& w, Make make) {
  auto& e = cache[w.unsafeGetTensorImpl()];
  if (e.version != static_cast<int64_t>(w._version()) || e.data != w.data_ptr() || !e.value.defined() || !make.fits(e.value)) {
    e.value = make(w);
    e.version = static_cast<int64_t>(w._version());
    e.data = w.data_ptr();
  }
  return e.value;
}

torch::Tensor WeightCast::cast(const torch::Tensor& w, torch::ScalarType dt, bool channels_last) {
  if (!w.defined()) return w;
  const auto fmt = channels_last && w.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  if (torch::GradMode::is_enabled()) return w.to(dt).contiguous(fmt);  // differentiable: the gradient reaches w
  if (w.scalar_type() == dt && w.is_contiguous(fmt)) return w;
  // Inference: cast (and reorder) once per weight version instead of in every forward pass (oneDNN reorders an
  // NCHW weight to NHWC on every call otherwise).
  struct Make {
    torch::ScalarType dt;
    at::MemoryFormat fmt;
    bool fits(const torch::Tensor& v) const { return v.scalar_type() == dt && v.is_contiguous(fmt); }
    torch::Tensor operator()(const torch::Tensor& w) const { return w.to(dt).contiguous(fmt); }
  };
  return cached(cache_, w, Make{dt, fmt});
}

torch::Tensor WeightCast::conv(torch::nn::Conv2d c, const torch::Tensor& x) {
  // Every conv this serves (UNet, classifier) pads k/2, so the padding follows from the kernel size.
  const auto& o = c->options;
  const std::vector<int64_t> pad{(*o.kernel_size())[0] / 2, (*o.kernel_size())[1] / 2};
  // fp32 training on AVX-512: oneDNN's Winograd 3×3 (winograd_conv.h); inference keeps the direct convolution.
  if (torch::GradMode::is_enabled() && (*o.stride())[0] == (*o.stride())[1] && pad[0] == pad[1] &&
      (*o.dilation())[0] == (*o.dilation())[1] &&
      winograd_applies(x, c->weight, c->bias, (*o.stride())[0], pad[0], (*o.dilation())[0], o.groups()))
    return winograd_conv3x3(x, c->weight, c->bias);
  // bf16 on AVX-512 BF16 without AMX: our Winograd F(2×2,3×3) (winograd_bf16.h), in training with a bias (every
  // 3×3 convolution of the UNet has one).
  if (x.scalar_type() == torch::kBFloat16 && (*o.stride())[0] == (*o.stride())[1] && pad[0] == pad[1] &&
      (*o.dilation())[0] == (*o.dilation())[1] &&
      winograd_bf16_applies(x, c->weight, c->bias, (*o.stride())[0], pad[0], (*o.dilation())[0], o.groups()) &&
      (!torch::GradMode::is_enabled() || c->bias.defined())) {
    if (torch::GradMode::is_enabled()) return winograd_bf16_conv3x3_train(x, c->weight, c->bias);
    struct Make {
      bool fits(const torch::Tensor&) const { return true; }
      torch::Tensor operator()(const torch::Tensor& w) const { return winograd_bf16_weights(w); }
    };
    return winograd_bf16_conv3x3(x, cached(winograd_, c->weight, Make{}), c->bias);
  }
  const bool cl = x.is_contiguous(at::MemoryFormat::ChannelsLast) && !x.is_contiguous();
  if (x.scalar_type() == c->weight.scalar_type() && (!cl || torch::GradMode::is_enabled())) return c(x);
  if (x.scalar_type() == torch::kBFloat16 && x.device().is_cpu() && !cpu_features().native_bf16()) {
    // Forced bf16 on a CPU without it (tests, --force-precision): LibTorch's bf16 convolutions need AVX-512 or
    // fall back to slow paths, so convolve in fp32 and round the result to bf16, as a bf16 conv rounds its output.
    auto y = torch::conv2d(x.to(torch::kFloat32), c->weight, c->bias, *o.stride(), pad, *o.dilation(), o.groups());
    return y.to(torch::kBFloat16);
  }
  return torch::conv2d(x, cast(c->weight, x.scalar_type(), cl), cast(c->bias, x.scalar_type(), false), *o.stride(), pad,
                       *o.dilation(), o.groups());
}

torch::Tensor WeightCast::conv_with(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  // w, b are temporaries (a concatenation): cast directly, not through the cache. 1×1, stride 1, no padding.
  const auto dt = x.scalar_type();
  if (dt == torch::kBFloat16 && x.device().is_cpu() && !cpu_features().native_bf16())  // forced bf16: see conv()
    return torch::conv2d(x.to(torch::kFloat32), w.to(torch::kFloat32), b.to(torch::kFloat32)).to(dt);
  return torch::conv2d(x, w.scalar_type() == dt ? w : w.to(dt), b.scalar_type() == dt ? b : b.to(dt));
}

torch::Tensor WeightCast::linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (x.scalar_type() == w.scalar_type()) return torch::linear(x, w, b);
  return torch::linear(x, cast(w, x.scalar_type(), false), cast(b, x.scalar_type(), false));  // cached per version
}

}  // namespace ddpm
