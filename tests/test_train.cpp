// test_train.cpp — the training loop: overfitting a handful of images, Adam against LibTorch's, rank slicing,
// determinism and resume.
#include "ddpm/diffusion/prediction.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/runtime.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {

// A few smooth 28×28 test images (discs and bars), uint8 [N,1,28,28].
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
  return d;
}

Config tiny_config(int64_t batch) {
  Config c;
  c.preset = "tiny";
  c.model = preset_model("tiny");
  c.train.batch_size = batch;
  c.train.lr = 2e-3;
  c.train.warmup = 10;
  c.train.ema_decay = 0.99;
  c.train.seed = 7;
  return c;
}

// Pretends to be rank r of a world of size w, without communicating (for batch slicing only).
struct FakeComm : Communicator {
  int r, w;
  FakeComm(int r_, int w_) : r(r_), w(w_) {}
  int rank() const override { return r; }
  int world_size() const override { return w; }
  std::string backend() const override { return "fake"; }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor) override {
    return std::make_unique<DoneCollective>();
  }
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  torch::Tensor all_gather(const torch::Tensor& t) override { return torch::stack(std::vector<torch::Tensor>(w, t)); }
};

bool same_weights(Backbone& a, Backbone& b) {
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i], pb[i])) return false;
  return true;
}

std::string tmp_dir(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : fs::temp_directory_path().string()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST(Train, LrWarmupAndEmaDecay) {
  TrainConfig t;
  t.lr = 1e-3;
  t.warmup = 100;
  EXPECT_NEAR(lr_at(t, 0), 1e-5, 1e-12);
  EXPECT_NEAR(lr_at(t, 49), 5e-4, 1e-12);
  EXPECT_NEAR(lr_at(t, 500), 1e-3, 1e-12);
  t.warmup = 0;
  EXPECT_EQ(lr_at(t, 0), 1e-3);
  EXPECT_NEAR(ema_decay_at(0.9999, 0), 0.1, 1e-12);
  EXPECT_NEAR(ema_decay_at(0.9999, 90), 0.91, 1e-12);
  EXPECT_EQ(ema_decay_at(0.9999, 1000000), 0.9999);
}

TEST(Train, AdamMatchesLibTorch) {
  torch::manual_seed(0);
  auto a = torch::randn({5, 3}, torch::requires_grad());
  auto b = a.detach().clone().requires_grad_(true);
  Adam ours({a});
  torch::optim::Adam ref({b}, torch::optim::AdamOptions(1e-2));
  for (int i = 0; i < 5; ++i) {
    auto target = torch::randn({5, 3});
    a.mutable_grad() = torch::Tensor();
    (a - target).pow(2).sum().backward();
    ours.step(1e-2);
    ref.zero_grad();
    (b - target).pow(2).sum().backward();
    ref.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-6));
}

TEST(Train, TinyModelOverfitsAHandfulOfImages) {
  set_threads(0);
  Trainer tr(tiny_config(8), shapes_dataset(4), torch::kCPU);
  std::vector<double> losses;
  for (int i = 0; i < 120; ++i) losses.push_back(tr.train_step().loss);
  auto mean = [&](size_t a, size_t b) {
    double s = 0;
    for (size_t i = a; i < b; ++i) s += losses[i];
    return s / static_cast<double>(b - a);
  };
  const double first = mean(0, 10), last = mean(100, 120);
  std::cout << "[          ] loss first 10 steps " << first << ", last 20 steps " << last << "\n";
  EXPECT_GT(first, 0.5);               // ε-prediction starts near MSE 1 (the network outputs ~0)
  EXPECT_LT(last, first / 4.0);        // and must fall by at least 4×
}

TEST(Train, GlobalBatchIsSplitAcrossRanks) {
  // Rank slices of a world of 2 are exactly the halves of the world-1 batch: same samples, t and noise.
  auto cfg = tiny_config(6);
  Trainer whole(cfg, shapes_dataset(5), torch::kCPU);
  Trainer r0(cfg, shapes_dataset(5), torch::kCPU, std::make_shared<FakeComm>(0, 2));
  Trainer r1(cfg, shapes_dataset(5), torch::kCPU, std::make_shared<FakeComm>(1, 2));
  for (int64_t step : {0, 1, 7}) {
    auto w = whole.batch_for_step(step), a = r0.batch_for_step(step), b = r1.batch_for_step(step);
    EXPECT_TRUE(torch::equal(torch::cat({a.x0, b.x0}), w.x0));
    EXPECT_TRUE(torch::equal(torch::cat({a.t, b.t}), w.t));
    EXPECT_TRUE(torch::equal(torch::cat({a.noise, b.noise}), w.noise));
  }
  EXPECT_THROW(Trainer(tiny_config(5), shapes_dataset(5), torch::kCPU, std::make_shared<FakeComm>(0, 2)),
               std::runtime_error);
}

TEST(Train, EveryEpochVisitsEverySampleOnce) {
  auto cfg = tiny_config(4);
  Trainer tr(cfg, shapes_dataset(8), torch::kCPU);
  // 8 images, batch 4: steps 0 and 1 form epoch 0. Identify images by their pixel sum.
  auto sums = torch::cat({tr.batch_for_step(0).x0, tr.batch_for_step(1).x0}).sum({1, 2, 3});
  auto ref = to_model_range(shapes_dataset(8).images).sum({1, 2, 3});
  EXPECT_TRUE(torch::allclose(std::get<0>(sums.sort()), std::get<0>(ref.sort())));
}

TEST(Train, SameSeedSameWeightsAndExactResume) {
  set_threads(0);
  const auto dir = tmp_dir("resume");
  auto cfg = tiny_config(4);
  cfg.model.dropout = 0.1;  // dropout draws must be reproducible too
  Trainer straight(cfg, shapes_dataset(6), torch::kCPU);
  for (int i = 0; i < 4; ++i) straight.train_step();

  Trainer first(cfg, shapes_dataset(6), torch::kCPU);
  for (int i = 0; i < 2; ++i) first.train_step();
  const auto ck = dir + "/ck.safetensors";
  first.save(ck);
  Trainer resumed(cfg, shapes_dataset(6), torch::kCPU);
  resumed.load(ck);
  EXPECT_EQ(resumed.step(), 2);
  for (int i = 0; i < 2; ++i) resumed.train_step();
  EXPECT_TRUE(same_weights(straight.model(), resumed.model()));
  EXPECT_TRUE(same_weights(straight.ema(), resumed.ema()));
}

TEST(Train, RunWritesRunDirectory) {
  set_threads(0);
  auto cfg = tiny_config(4);
  cfg.train.out = tmp_dir("run");
  cfg.train.steps = 3;
  cfg.train.log_every = 1;
  cfg.train.sample_num = 4;
  cfg.train.sample_steps = 5;
  Trainer tr(cfg, shapes_dataset(4), torch::kCPU);
  std::atomic<bool> stop{false};
  TrainHooks hooks;
  hooks.stop = &stop;
  EXPECT_TRUE(tr.run(hooks));
  EXPECT_TRUE(fs::exists(cfg.train.out + "/checkpoint.safetensors"));
  EXPECT_TRUE(fs::exists(cfg.train.out + "/samples/step_0000003.png"));
  std::ifstream m(cfg.train.out + "/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(m, l);) {
    auto j = nlohmann::json::parse(l);
    EXPECT_TRUE(j.contains("loss") && j.contains("images_per_sec") && j.contains("lr"));
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  // A stop request saves and returns false.
  cfg.train.steps = 6;
  Trainer tr2(cfg, shapes_dataset(4), torch::kCPU);
  tr2.load(cfg.train.out + "/checkpoint.safetensors");
  stop = true;
  EXPECT_FALSE(tr2.run(hooks));
  EXPECT_EQ(load_checkpoint(cfg.train.out + "/checkpoint.safetensors").step, 3);
}

TEST(Train, LabelDropoutIsPerSampleAtRateP) {
  // Classifier-free guidance training: each sample independently gets the null label with probability p.
  auto d = shapes_dataset(10);
  d.labels = torch::arange(10, torch::kLong) % 5;
  auto cfg = tiny_config(64);
  cfg.model.num_classes = 5;
  cfg.train.label_dropout = 0.2;
  Trainer tr(cfg, d, torch::kCPU);
  int64_t dropped = 0, total = 0, mixed_batches = 0, steps = 300;
  for (int64_t s = 0; s < steps; ++s) {
    auto b = tr.batch_for_step(s);
    ASSERT_TRUE(b.y.defined());
    const int64_t n = (b.y == 5).sum().item<int64_t>();
    dropped += n;
    total += b.y.size(0);
    if (n > 0 && n < b.y.size(0)) ++mixed_batches;
    // Kept labels are the dataset's labels of the drawn images.
    auto kept = b.y != 5;
    EXPECT_TRUE(b.y.masked_select(kept).lt(5).all().item<bool>());
  }
  const double rate = static_cast<double>(dropped) / static_cast<double>(total);
  std::cout << "[          ] null-label rate " << rate << " over " << total << " samples (p = 0.2)\n";
  EXPECT_NEAR(rate, 0.2, 0.01);           // 19,200 draws: 3σ ≈ 0.009
  EXPECT_EQ(mixed_batches, steps);        // never the whole batch at once
}

TEST(Train, ClassConditionalNeedsLabelsThatFit) {
  auto cfg = tiny_config(4);
  cfg.model.num_classes = 3;
  EXPECT_THROW(Trainer(cfg, shapes_dataset(4), torch::kCPU), std::runtime_error);  // no labels
  auto d = shapes_dataset(4);
  d.labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
  EXPECT_THROW(Trainer(cfg, d, torch::kCPU), std::runtime_error);                   // label 3 >= 3 classes
  d.labels = torch::tensor({0, 1, 2, 2}, torch::kLong);
  EXPECT_NO_THROW(Trainer(cfg, d, torch::kCPU));
}

TEST(Train, LrScheduleDecaysToZeroAtTheEnd) {
  // After a 100-step warm-up, cosine and linear decay over the remaining 900 steps of a 1000-step run.
  TrainConfig t;
  t.lr = 1e-3;
  t.warmup = 100;
  t.steps = 1000;
  for (const std::string s : {"cosine", "linear"}) {
    t.lr_schedule = s;
    EXPECT_NEAR(lr_at(t, 49), 5e-4, 1e-12) << s;  // the warm-up is the same
    EXPECT_NEAR(lr_at(t, 100), 1e-3, 1e-12) << s;
    EXPECT_NEAR(lr_at(t, 550), 5e-4, 1e-12) << s;  // half-way: both at lr / 2
    EXPECT_NEAR(lr_at(t, 1000), 0.0, 1e-15) << s;
    EXPECT_GT(lr_at(t, 999), 0.0) << s;           // the last update still moves
    for (int64_t k = 100; k < 1000; ++k) EXPECT_LT(lr_at(t, k + 1), lr_at(t, k)) << s << " at " << k;
  }
  t.lr_schedule = "cosine";
  EXPECT_NEAR(lr_at(t, 325), 1e-3 * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);  // a quarter of the way
  t.lr_schedule = "linear";
  EXPECT_NEAR(lr_at(t, 325), 0.75e-3, 1e-12);
  EXPECT_EQ(lr_at(t, 5000), 0.0);  // past the planned end (a run extended without a new schedule)
}

TEST(Train, MinSnrWeightsPerTarget) {
  // SNR = ᾱ/(1 − ᾱ): ᾱ = 0.99 → 99, ᾱ = 0.5 → 1, ᾱ = 0.1 → 1/9; γ = 5.
  auto a = torch::tensor({0.99, 0.5, 0.1}, torch::kFloat64);
  auto w_eps = min_snr_weight(Prediction::Eps, a, 5.0), w_v = min_snr_weight(Prediction::V, a, 5.0),
       w_x0 = min_snr_weight(Prediction::X0, a, 5.0);
  EXPECT_NEAR(w_eps[0].item<double>(), 5.0 / 99.0, 1e-12);  // clipped: high SNR is down-weighted
  EXPECT_NEAR(w_eps[1].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(w_eps[2].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(w_v[0].item<double>(), 5.0 / 100.0, 1e-12);
  EXPECT_NEAR(w_v[1].item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(w_v[2].item<double>(), (1.0 / 9.0) / (1.0 / 9.0 + 1.0), 1e-12);
  EXPECT_NEAR(w_x0[0].item<double>(), 5.0, 1e-12);
  EXPECT_NEAR(w_x0[2].item<double>(), 1.0 / 9.0, 1e-12);
}

TEST(Train, MinSnrLossWeightsTheSquaredError) {
  // With γ far above every SNR of the schedule the ε weights are all 1: the first step's loss is L_simple's.
  // With γ = 1 every sample with SNR > 1 counts less, so the same first step's loss is smaller; it still trains.
  set_threads(0);
  auto base = tiny_config(8);
  Trainer plain(base, shapes_dataset(4), torch::kCPU);
  const double l_plain = plain.train_step().loss;
  auto cfg = base;
  cfg.train.loss_weight = "min_snr";
  cfg.train.min_snr_gamma = 1e9;
  Trainer huge(cfg, shapes_dataset(4), torch::kCPU);
  EXPECT_NEAR(huge.train_step().loss, l_plain, 1e-6 * l_plain);
  cfg.train.min_snr_gamma = 1.0;
  Trainer one(cfg, shapes_dataset(4), torch::kCPU);
  double first = one.train_step().loss, last = 0;
  EXPECT_LT(first, 0.9 * l_plain);
  for (int i = 1; i < 80; ++i) {
    const double l = one.train_step().loss;
    if (i < 10) first += l;
    if (i >= 60) last += l / 20;
  }
  EXPECT_LT(last, first / 10.0 / 2.0);
}

TEST(Train, XZeroAndVTargetsTrainToo) {
  // The loss is the squared error on the configured target; all three fall on a handful of images.
  set_threads(0);
  for (const std::string p : {"x0", "v"}) {
    auto cfg = tiny_config(8);
    cfg.diffusion.prediction = p;
    Trainer tr(cfg, shapes_dataset(4), torch::kCPU);
    double first = 0, last = 0;
    for (int i = 0; i < 80; ++i) {
      const double l = tr.train_step().loss;
      if (i < 10) first += l / 10;
      if (i >= 60) last += l / 20;
    }
    std::cout << "[          ] " << p << "-prediction loss first 10 steps " << first << ", last 20 " << last << "\n";
    EXPECT_LT(last, first / 2.0) << p;
  }
}

TEST(Train, InitFromUnconditionalWeightsAddsClasses) {
  // Fine-tuning an unconditional model into a class-conditional one: every shared weight is copied; the null
  // label's embedding row is zero, so the new model's unconditional ε is exactly the old model; class rows are
  // random, so the classes differ from the first step.
  auto dir = tmp_dir("ddpm_test_init");
  Trainer base(tiny_config(4), shapes_dataset(4), torch::kCPU);
  for (int i = 0; i < 3; ++i) base.train_step();
  base.save(dir + "/base.safetensors");
  auto cfg = tiny_config(4);
  cfg.model.num_classes = 3;
  auto d = shapes_dataset(4);
  d.labels = torch::tensor({0, 1, 2, 0}, torch::kLong);
  Trainer tuned(cfg, d, torch::kCPU);
  auto fresh = tuned.init_from(load_checkpoint(dir + "/base.safetensors"));
  EXPECT_EQ(fresh, (std::vector<std::string>{"label_emb.weight"}));
  EXPECT_EQ(tuned.step(), 0);
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({5, 600}, torch::kLong);
  auto want = base.ema()->forward(x, t);
  EXPECT_TRUE(torch::allclose(tuned.ema()->forward(x, t), want, 1e-6, 1e-6));  // the null label
  EXPECT_TRUE(torch::allclose(tuned.model()->forward(x, t, torch::tensor({3, 3}, torch::kLong)), want, 1e-6, 1e-6));
  EXPECT_GT((tuned.ema()->forward(x, t, torch::tensor({1, 2}, torch::kLong)) - want).abs().max().item<double>(), 1e-3);
  // A different architecture is refused.
  auto other = tiny_config(4);
  other.model.ch = 64;
  Trainer wrong(other, shapes_dataset(4), torch::kCPU);
  EXPECT_THROW(wrong.init_from(load_checkpoint(dir + "/base.safetensors")), std::runtime_error);
}

TEST(Train, DatasetMustMatchModel) {
  Dataset d;
  d.name = "rgb";
  d.images = torch::zeros({2, 3, 28, 28}, torch::kUInt8);
  EXPECT_THROW(Trainer(tiny_config(2), d, torch::kCPU), std::runtime_error);
}

TEST(Train, FusedAdamStepWithClippingAndEmaMatchesTheOps) {
  // Adam::step(lr, scale, ema, decay) fuses g·scale, both moments, θ and the EMA in one pass: the same numbers as
  // the separate LibTorch ops (up to float rounding of the fused expression).
  torch::manual_seed(2);
  auto p = torch::randn({1000}, torch::requires_grad());
  auto ema = p.detach().clone();
  auto q = p.detach().clone();
  auto m = torch::zeros({1000}), v = torch::zeros({1000}), ema_ref = ema.clone();
  Adam ours({p});
  const double lr = 1e-2, scale = 0.3, decay = 0.9;
  std::vector<torch::Tensor> emas{ema};
  for (int t = 1; t <= 4; ++t) {
    auto g = torch::randn({1000});
    p.mutable_grad() = g.clone();
    ours.step(lr, scale, &emas, decay);
    auto gs = g * scale;
    m = 0.9 * m + 0.1 * gs;
    v = 0.999 * v + 0.001 * gs * gs;
    const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.999, t);
    q = q - lr / bc1 * m / (v.sqrt() / std::sqrt(bc2) + 1e-8);
    ema_ref = decay * ema_ref + (1 - decay) * q;
  }
  EXPECT_TRUE(torch::allclose(p.detach(), q, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(emas[0], ema_ref, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(ours.exp_avg()[0], m, 1e-5, 1e-7));
  EXPECT_TRUE(torch::allclose(ours.exp_avg_sq()[0], v, 1e-5, 1e-9));
}
