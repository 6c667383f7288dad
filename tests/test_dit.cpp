// test_dit.cpp — the DiT backbone (dit.h): shapes, exact parameter and FLOP counts of the presets, the 2-D
// position embedding and the patch embedding against their definitions, adaLN-Zero's identity at
// initialisation, gradient flow, bf16 against fp32, the config fields and their errors, and the DiT behind the
// Backbone interface: trained by the Trainer (overfitting a handful of images, a run directory), saved, loaded
// and sampled through the checkpoint code. The UNet's own tests are test_unet.cpp; its shipped checkpoints are
// loaded here too (they must not notice the interface). CPU only, small models.
#include "ddpm/io/checkpoint.h"
#include "ddpm/nn/backbone.h"
#include "ddpm/nn/dit.h"
#include "ddpm/nn/gelu.h"
#include "ddpm/nn/parallel_mm.h"
#include "ddpm/nn/unet.h"
#include "ddpm/samplers/generate.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/runtime.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {

// A small DiT for 28×28 gray images: 49 tokens of 4×4 patches, 2 blocks of width 64 (4 heads of 16).
ModelConfig small_dit(int64_t num_classes = 0) {
  auto m = preset_model("dit-fmnist");
  m.patch_size = 4;
  m.depth = 2;
  m.hidden_size = 64;
  m.num_heads = 4;
  m.num_classes = num_classes;
  return m;
}

// Every weight given a size (a fresh DiT is the zero function: adaLN-Zero), so every layer shapes the output.
void perturb(torch::nn::Module& m, double scale = 1.0) {
  torch::NoGradGuard ng;
  for (auto& p : m.parameters())
    p.normal_(0.0, scale / std::sqrt(static_cast<double>(p.dim() > 1 ? p[0].numel() : p.numel())));
}

// A few smooth 28×28 images (discs and bars), uint8 [N,1,28,28] (as test_train.cpp's).
Dataset shapes_dataset(int64_t n) {
  auto yy = torch::arange(28).view({28, 1}).expand({28, 28}).to(torch::kFloat32);
  auto xx = torch::arange(28).view({1, 28}).expand({28, 28}).to(torch::kFloat32);
  std::vector<torch::Tensor> imgs;
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor m;
    if (i % 2 == 0) m = ((yy - 8 - 3 * i).pow(2) + (xx - 14).pow(2) < 36.0 + 10 * i);
    else m = (xx > 4 + 2 * i) & (xx < 12 + 2 * i);
    imgs.push_back((m.to(torch::kFloat32) * 255).to(torch::kUInt8).unsqueeze(0));
  }
  Dataset d;
  d.name = "shapes";
  d.images = torch::stack(imgs);
  d.labels = torch::arange(n, torch::kLong) % 2;
  return d;
}

Config dit_train_config(int64_t batch) {
  Config c;
  c.preset = "dit-fmnist";
  c.model = small_dit();
  c.train.batch_size = batch;
  c.train.lr = 2e-3;
  c.train.warmup = 10;
  c.train.ema_decay = 0.99;
  c.train.seed = 7;
  return c;
}

std::string tmp_dir(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : fs::temp_directory_path().string()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST(DiT, ExactParameterCountsAndFlopsOfThePresets) {
  // Parameters: patch embedding C·p²·D + D, timestep MLP 256·D + D + D² + D, per block 18·D² + 15·D (qkv, proj,
  // fc1, fc2 at ratio 4, adaLN 6D), final adaLN 2D² + 2D and linear D·p²C + p²C.
  const std::tuple<const char*, int64_t, double> expected[] = {{"dit-fmnist", 1057444, 0.349691904e9},
                                                               {"dit-cifar", 32471436, 12.10662912e9}};
  for (const auto& [name, n, flops] : expected) {
    Backbone net = make_backbone(preset_model(name));
    EXPECT_EQ(count_parameters(*net), n) << name;
    EXPECT_NEAR(net->forward_flops_per_image(), flops, 1.0) << name;
  }
  // DiT-S/2 at 256 tokens is the paper's 6.06 GFLOPs (counted in multiply-adds): 12.1 at 2 per multiply-add.
  EXPECT_NEAR(make_backbone(preset_model("dit-cifar"))->forward_flops_per_image() / 2e9, 6.06, 0.05);
  // A class-conditional DiT adds the label table: (K + 1) rows of D.
  auto m = preset_model("dit-fmnist");
  m.num_classes = 10;
  EXPECT_EQ(count_parameters(*make_backbone(m)), 1057444 + 11 * 96);
}

TEST(DiT, ParameterNamesFollowThePapersCode) {
  DiT net(small_dit(10));
  auto named = net->named_parameters();
  for (const char* k : {"x_embedder.proj.weight", "x_embedder.proj.bias", "t_embedder.mlp.0.weight",
                        "t_embedder.mlp.2.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.bias",
                        "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "blocks.1.adaLN_modulation.1.weight",
                        "final_layer.linear.weight", "final_layer.adaLN_modulation.1.bias",
                        "y_embedder.embedding_table.weight"})
    EXPECT_TRUE(named.contains(k)) << k;
  EXPECT_EQ(named["x_embedder.proj.weight"].sizes(), (std::vector<int64_t>{64, 1, 4, 4}));
  EXPECT_EQ(named["blocks.0.adaLN_modulation.1.weight"].sizes(), (std::vector<int64_t>{6 * 64, 64}));
  EXPECT_EQ(named["final_layer.linear.weight"].sizes(), (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(net->named_buffers().size(), 0u);  // the position embedding is fixed, not state
}

TEST(DiT, OutputShapesWithAndWithoutClasses) {
  torch::NoGradGuard ng;
  for (int64_t K : {0, 10}) {
    const std::tuple<int64_t, int64_t, int64_t> shapes[] = {{28, 1, 4}, {32, 3, 2}, {28, 1, 2}};  // size, C, p
    for (const auto& [size, channels, p] : shapes) {
      auto cfg = small_dit(K);
      cfg.image_size = size;
      cfg.channels = channels;
      cfg.patch_size = p;
      DiT net(cfg);
      perturb(*net);
      net->eval();
      auto x = torch::randn({3, channels, size, size});
      auto t = torch::tensor({0, 500, 999}, torch::kLong);
      auto out = K > 0 ? net->forward(x, t, torch::tensor({0, 9, 10}, torch::kLong)) : net->forward(x, t);
      EXPECT_EQ(out.sizes(), x.sizes()) << size << " " << p << " K=" << K;
      EXPECT_EQ(out.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(out.is_contiguous());
      EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    }
  }
}

TEST(DiT, PositionEmbeddingIsTheTwoDimensionalSinCos) {
  const int64_t D = 16, g = 5;
  auto e = sincos_pos_embed_2d(D, g);  // [25, 16]
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{g * g, D}));
  for (int64_t r = 0; r < g; ++r)
    for (int64_t c = 0; c < g; ++c)
      for (int64_t k = 0; k < D / 4; ++k) {
        const double w = std::pow(10000.0, -static_cast<double>(k) / (D / 4));
        const auto row = e[r * g + c];
        EXPECT_NEAR(row[k].item<double>(), std::sin(c * w), 1e-6);               // column, sin
        EXPECT_NEAR(row[D / 4 + k].item<double>(), std::cos(c * w), 1e-6);       // column, cos
        EXPECT_NEAR(row[D / 2 + k].item<double>(), std::sin(r * w), 1e-6);       // row, sin
        EXPECT_NEAR(row[3 * D / 4 + k].item<double>(), std::cos(r * w), 1e-6);   // row, cos
      }
}

TEST(DiT, PatchEmbeddingIsTheStridedConvolution) {
  torch::NoGradGuard ng;
  for (int64_t p : {2, 4}) {
    auto cfg = small_dit();
    cfg.channels = 3;
    cfg.patch_size = p;
    DiT net(cfg);
    auto x = torch::randn({2, 3, 28, 28});
    auto conv = net->x_proj->forward(x).flatten(2).transpose(1, 2);  // [B,N,D]: Conv2d(C, D, p, stride p)
    auto want = conv + sincos_pos_embed_2d(cfg.hidden_size, 28 / p);
    EXPECT_LT((net->patch_embed(x, torch::kFloat32) - want).abs().max().item<double>(), 1e-5) << p;
    // NHWC input: the same tokens.
    auto cl = net->patch_embed(x.contiguous(at::MemoryFormat::ChannelsLast), torch::kFloat32);
    EXPECT_TRUE(torch::equal(cl, net->patch_embed(x, torch::kFloat32))) << p;
    // unpatchify inverts the patch layout of the final layer: token (r, c) holds pixel (r·p + i, c·p + j) at
    // feature (i·p + j)·C + channel.
    auto img = torch::randn({2, 3, 28, 28});
    const int64_t g = 28 / p;
    auto tokens = img.view({2, 3, g, p, g, p}).permute({0, 2, 4, 3, 5, 1}).reshape({2, g * g, p * p * 3});
    EXPECT_TRUE(torch::equal(net->unpatchify(tokens), img)) << p;
  }
}

TEST(DiT, AdaLnZeroMakesEveryBlockTheIdentityAndTheOutputZeroAtInit) {
  torch::NoGradGuard ng;
  torch::manual_seed(0);
  DiT net(small_dit(10));
  net->eval();
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({3, 800}, torch::kLong);
  auto out = net->forward(x, t, torch::tensor({2, 10}, torch::kLong));
  EXPECT_TRUE(torch::equal(out, torch::zeros_like(out)));  // the final linear is zero: the output exactly 0
  auto c = net->t_mlp->forward(timestep_embedding(t, 256));
  auto h = torch::randn({2, 49, 64});
  WeightCast wc;
  for (const auto& b : *net->blocks) {
    auto o = b->as<DiTBlockImpl>()->forward(h, c, torch::kFloat32, wc);
    EXPECT_TRUE(torch::equal(o, h));  // gate α = 0: x + 0 · branch = x, bit for bit
  }
}

TEST(DiT, GradientsReachEveryParameter) {
  torch::manual_seed(1);
  DiT net(small_dit(10));
  auto x = torch::randn({4, 1, 28, 28});
  auto t = torch::tensor({3, 300, 700, 999}, torch::kLong);
  auto y = torch::tensor({0, 1, 2, 10}, torch::kLong);
  auto loss_of = [&] { return (net->forward(x, t, y) - x).pow(2).mean(); };
  // At initialisation only the (zero) final linear has a gradient: every other path passes a zero weight.
  loss_of().backward();
  for (const auto& p : net->named_parameters()) {
    const bool final_linear = p.key().rfind("final_layer.linear.", 0) == 0;
    const auto g = p.value().grad();
    const double gsum = g.defined() ? g.abs().sum().item<double>() : 0.0;
    if (final_linear) EXPECT_GT(gsum, 0.0) << p.key();
    else EXPECT_EQ(gsum, 0.0) << p.key();
  }
  // Each optimiser step opens the next layer (final linear -> adaLN gates and the embeddings -> the branches):
  // after three steps every parameter gets a gradient.
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    loss_of().backward();
    opt.step();
  }
  opt.zero_grad();
  loss_of().backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key() << " got no gradient";
  }
}

TEST(DiT, ThreadedLinearsMatchTorchLinearWithGradients) {
  // The fp32 CPU linears run through parallel_mm.h's threaded_linear: forward and all three gradients equal
  // torch::linear's up to fp32 rounding, whatever the thread count.
  const int before = at::get_num_threads();
  torch::set_num_threads(2);
  torch::manual_seed(2);
  auto x = torch::randn({5, 37, 24}, torch::requires_grad());
  auto w = torch::randn({40, 24}, torch::requires_grad()), b = torch::randn({40}, torch::requires_grad());
  auto dy = torch::randn({5, 37, 40});
  auto y = threaded_linear(x, w, b);
  y.backward(dy);
  auto gx = x.grad().clone(), gw = w.grad().clone(), gb = b.grad().clone();
  x.grad().zero_(), w.grad().zero_(), b.grad().zero_();
  auto ref = torch::linear(x, w, b);
  ref.backward(dy);
  torch::set_num_threads(before);
  EXPECT_LT((y - ref).abs().max().item<double>(), 1e-4);
  EXPECT_LT((gx - x.grad()).abs().max().item<double>(), 1e-4);
  EXPECT_LT((gw - w.grad()).abs().max().item<double>(), 1e-3);
  EXPECT_LT((gb - b.grad()).abs().max().item<double>(), 1e-4);
}

TEST(DiT, GeluKernelMatchesTorchGeluWithGradients) {
  // gelu.h's vectorised tanh-GELU against torch::gelu(x, "tanh"): fp32 values and gradients to float rounding
  // (the exp is a polynomial, rel. error ≈ 1e-7), over a range that reaches both saturated tails; bf16 within
  // bf16 rounding of the fp32 answer; an odd length (not a multiple of the vector width) on 2 threads.
  const int before = at::get_num_threads();
  torch::set_num_threads(2);
  auto x = (torch::linspace(-12, 12, 100003)).requires_grad_();
  auto dy = torch::randn({100003});
  auto y = gelu_tanh(x);
  y.backward(dy);
  auto gx = x.grad().clone();
  x.grad().zero_();
  auto ref = torch::gelu(x, "tanh");
  ref.backward(dy);
  EXPECT_LT((y - ref).abs().max().item<double>(), 2e-6);
  EXPECT_LT((gx - x.grad()).abs().max().item<double>(), 2e-5);
  torch::NoGradGuard ng;
  auto xb = x.detach().to(torch::kBFloat16);
  auto yb = gelu_tanh(xb);
  EXPECT_EQ(yb.scalar_type(), torch::kBFloat16);
  auto ref_b = torch::gelu(xb.to(torch::kFloat32), "tanh");
  EXPECT_LT(((yb.to(torch::kFloat32) - ref_b).abs() / (ref_b.abs() + 1e-3)).max().item<double>(), 8e-3);
  auto xs = torch::randn({4, 6}).t();  // strided input: made contiguous
  EXPECT_LT((gelu_tanh(xs) - torch::gelu(xs, "tanh")).abs().max().item<double>(), 2e-6);
  torch::set_num_threads(before);
}

TEST(DiT, DependsOnTimestepAndLabelAndTreatsNoLabelAsNull) {
  torch::NoGradGuard ng;
  torch::manual_seed(0);
  DiT cond(small_dit(10));
  perturb(*cond);
  cond->eval();
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({100, 100}, torch::kLong);
  auto a = cond->forward(x, t, torch::tensor({1, 1}, torch::kLong));
  auto b = cond->forward(x, t, torch::tensor({2, 2}, torch::kLong));
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-4);
  EXPECT_GT((a - cond->forward(x, torch::tensor({900, 900}), torch::tensor({1, 1}, torch::kLong))).abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(torch::equal(cond->forward(x, t), cond->forward(x, t, torch::tensor({10, 10}, torch::kLong))));
  EXPECT_THROW(cond->forward(x, t, torch::tensor({11, 0}, torch::kLong)), c10::Error);  // out of the table
  DiT plain(small_dit());
  EXPECT_THROW(plain->forward(x, t, torch::tensor({1, 1}, torch::kLong)), c10::Error);  // unconditional model
  EXPECT_THROW(plain->forward(torch::randn({1, 3, 28, 28}), torch::tensor({1})), c10::Error);
  EXPECT_THROW(plain->forward(x, torch::tensor({1, 2, 3})), c10::Error);
}

TEST(DiT, Bf16MatchesFp32WithinBf16Error) {
  // bf16 compute (forced here even on CPUs without it: correctness only): linears and attention products in bf16,
  // LayerNorm, softmax, the conditioning and the residual stream in fp32.
  torch::manual_seed(3);
  DiT net(small_dit(10));
  perturb(*net);
  net->eval();
  auto x = torch::randn({4, 1, 28, 28});
  auto t = torch::tensor({0, 10, 400, 999});
  auto y = torch::tensor({0, 3, 7, 10});
  torch::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = net->forward(x, t, y);
    for (bool cl : {false, true}) {
      net->set_compute({Precision::bf16, cl});
      auto out = net->forward(cl ? x.contiguous(at::MemoryFormat::ChannelsLast) : x, t, y);
      EXPECT_EQ(out.scalar_type(), torch::kFloat32);
      // 2 blocks of bf16 matmuls (8 bits of mantissa): about 1% of the output's size; the bound is 3%.
      const double rel = ((out - ref).abs().mean() / ref.abs().mean()).item<double>();
      EXPECT_LT(rel, 0.03) << "channels_last " << cl;
      EXPECT_GT(rel, 0.0);  // it did compute in bf16
    }
  }
  // Gradients of a bf16 pass reach the fp32 master weights.
  net->train();
  net->forward(x, t, y).pow(2).mean().backward();
  for (const auto& kv : net->named_parameters()) {
    ASSERT_TRUE(kv.value().grad().defined()) << kv.key();
    EXPECT_EQ(kv.value().grad().scalar_type(), torch::kFloat32) << kv.key();
    EXPECT_GT(kv.value().grad().abs().sum().item<double>(), 0) << kv.key();
  }
}

TEST(DiT, ConfigFieldsParseValidateAndRoundTrip) {
  auto error_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  Config c;
  apply_toml_string(c, "preset = \"dit-fmnist\"\n[model]\ndepth = 3\nnum_classes = 10\n", "d.toml");
  EXPECT_EQ(c.model.arch, "dit");
  EXPECT_EQ(c.model.depth, 3);
  validate(c);
  // The JSON of a checkpoint: the DiT's fields and the shared ones only, and back.
  const auto j = to_json(c);
  EXPECT_EQ(j["model"]["arch"], "dit");
  EXPECT_FALSE(j["model"].contains("ch_mult"));
  EXPECT_EQ(to_json(config_from_json(j)), j);
  Config d;
  apply_toml_string(d, to_toml(c), "roundtrip");
  EXPECT_EQ(to_json(d), j);
  // A UNet's JSON has no arch key (a checkpoint reads as before the DiT).
  EXPECT_FALSE(to_json(Config{})["model"].contains("arch"));
  EXPECT_EQ(config_from_json(to_json(Config{})).model.arch, "unet");
  // A UNet over a DiT preset says so (the preset alone would read back as a DiT).
  Config w;
  apply_toml_string(w, "preset = \"dit-fmnist\"\n[model]\narch = \"unet\"\n", "w.toml");
  validate(w);
  Config w2;
  apply_toml_string(w2, to_toml(w), "roundtrip");
  EXPECT_EQ(w2.model.arch, "unet");
  EXPECT_EQ(to_json(w2), to_json(w));
  EXPECT_EQ(to_json(config_from_json(to_json(w))), to_json(w));
  // Keys of the other arch, bad values: one-line errors naming the field.
  Config e;
  EXPECT_NE(error_of([&] { apply_toml_string(e, "preset = \"dit-fmnist\"\n[model]\nch = 64\n", "a.toml"); })
                .find("model.ch does not apply to model.arch = 'dit'"),
            std::string::npos);
  Config u;
  EXPECT_NE(error_of([&] { apply_toml_string(u, "[model]\ndepth = 4\n", "b.toml"); })
                .find("model.depth does not apply to model.arch = 'unet'"),
            std::string::npos);
  auto bad = [&](const std::function<void(ModelConfig&)>& f) {
    Config x;
    x.model = preset_model("dit-fmnist");
    f(x.model);
    return error_of([&] { validate(x); });
  };
  EXPECT_NE(bad([](ModelConfig& m) { m.patch_size = 3; }).find("not divisible by model.patch_size 3"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& m) { m.num_heads = 5; }).find("not divisible by model.num_heads 5"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& m) { m.hidden_size = 90; }).find("multiple of 4"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& m) { m.depth = 0; }).find("model.depth"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& m) { m.mlp_ratio = 0; }).find("model.mlp_ratio"), std::string::npos);
  EXPECT_NE(bad([](ModelConfig& m) { m.arch = "vit"; }).find("model.arch must be unet or dit"), std::string::npos);
  // Each network refuses the other's config.
  EXPECT_THROW(UNet(preset_model("dit-fmnist")), std::runtime_error);
  EXPECT_THROW(DiT(preset_model("fmnist")), std::runtime_error);
}

TEST(DiT, TrainerOverfitsAHandfulOfImages) {
  set_threads(0);
  Trainer tr(dit_train_config(8), shapes_dataset(4), torch::kCPU);
  EXPECT_NE(tr.model()->as<DiTImpl>(), nullptr);
  std::vector<double> losses;
  for (int i = 0; i < 150; ++i) losses.push_back(tr.train_step().loss);
  auto mean = [&](size_t a, size_t b) {
    double s = 0;
    for (size_t i = a; i < b; ++i) s += losses[i];
    return s / static_cast<double>(b - a);
  };
  const double first = mean(0, 10), last = mean(130, 150);
  std::cout << "[          ] loss first 10 steps " << first << ", last 20 steps " << last << "\n";
  EXPECT_GT(first, 0.5);         // the network starts at exactly 0: MSE 1 against ε
  EXPECT_LT(last, first / 4.0);  // and must fall by at least 4×
}

TEST(DiT, TrainerRunCheckpointLoadAndSample) {
  set_threads(0);
  auto cfg = dit_train_config(4);
  cfg.model.num_classes = 2;
  cfg.train.out = tmp_dir("dit-run");
  cfg.train.steps = 3;
  cfg.train.log_every = 1;
  cfg.train.sample_num = 4;
  cfg.train.sample_steps = 5;
  Trainer tr(cfg, shapes_dataset(4), torch::kCPU);
  TrainHooks hooks;
  EXPECT_TRUE(tr.run(hooks));
  const auto path = cfg.train.out + "/checkpoint.safetensors";
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(cfg.train.out + "/samples/step_0000003.png"));

  // The checkpoint: the DiT's config, the EMA weights by name, identical outputs after loading.
  auto ck = load_checkpoint(path);
  EXPECT_EQ(ck.step, 3);
  EXPECT_EQ(ck.config.model.arch, "dit");
  EXPECT_TRUE(ck.has("ema.blocks.0.adaLN_modulation.1.weight"));
  auto loaded = load_sampling_model(ck, torch::kCPU);
  ASSERT_NE(loaded->as<DiTImpl>(), nullptr);
  auto pa = tr.ema()->named_parameters(), pb = loaded->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].value(), pb[i].value())) << pa[i].key();
  {
    torch::NoGradGuard ng;
    auto x = torch::randn({2, 1, 28, 28});
    auto t = torch::tensor({10, 600});
    auto y = torch::tensor({1, 2}, torch::kLong);
    tr.ema()->eval();
    auto want = tr.ema()->forward(x, t, y);
    EXPECT_GT(want.abs().max().item<double>(), 0.0);  // trained: no longer the zero function
    EXPECT_TRUE(torch::equal(loaded->forward(x, t, y), want));
  }
  // Sampling through the one generate() (classes, guidance) works on it.
  GenerateOptions g;
  g.sampler.name = "ddim";
  g.sampler.steps = 3;
  g.num = 4;
  g.labels = {0, 1, 0, 1};
  g.guidance = 1.5;
  auto images = generate(loaded, ck.config, g);
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  EXPECT_TRUE(torch::isfinite(images).all().item<bool>());

  // Resume: a second trainer continues from it, bit for bit the same as straight on.
  cfg.train.steps = 5;
  Trainer resumed(cfg, shapes_dataset(4), torch::kCPU);
  resumed.load(path);
  EXPECT_EQ(resumed.step(), 3);
  Trainer straight(cfg, shapes_dataset(4), torch::kCPU);
  for (int i = 0; i < 5; ++i) straight.train_step();
  for (int i = 0; i < 2; ++i) resumed.train_step();
  auto ps = straight.model()->parameters(), pr = resumed.model()->parameters();
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(torch::equal(ps[i], pr[i])) << i;

  // A UNet trainer refuses the DiT checkpoint (different model), naming it.
  Config unet = cfg;
  unet.model = preset_model("tiny");
  unet.model.num_classes = 2;
  Trainer other(unet, shapes_dataset(4), torch::kCPU);
  EXPECT_THROW(other.load(path), std::runtime_error);
}

TEST(DiT, ShippedUNetCheckpointsStillLoadAsUNets) {
  for (const char* name : {"fmnist-small", "fmnist-small-cond"}) {
    const auto path = std::string(DDPM_SOURCE_DIR) + "/models/" + name + ".safetensors";
    if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
    auto ck = load_checkpoint(path);
    EXPECT_EQ(ck.config.model.arch, "unet") << name;
    auto net = load_sampling_model(ck, torch::kCPU);
    ASSERT_NE(net->as<UNetImpl>(), nullptr) << name;
    const int64_t K = ck.config.model.num_classes;
    EXPECT_EQ(count_parameters(*net), 1062497 + (K > 0 ? (K + 1) * 4 * ck.config.model.ch : 0)) << name;
    // The same network as one built directly and loaded by name: identical outputs.
    UNet direct(ck.config.model);
    load_module_state(*direct, ck.st, "ema.", path);
    direct->eval();
    direct->set_compute(net->compute());
    torch::NoGradGuard ng;
    auto x = torch::randn({2, 1, 28, 28});
    auto t = torch::tensor({20, 700});
    EXPECT_TRUE(torch::equal(net->forward(x, t), direct->forward(x, t))) << name;
  }
}
