// test_train.cpp — the training loop: overfitting a handful of images, Adam against LibTorch's, rank slicing,
// determinism and resume.
#include "ddpm/checkpoint.h"
#include "ddpm/runtime.h"
#include "ddpm/train.h"

#include <gtest/gtest.h>

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
  void all_reduce_mean(std::vector<torch::Tensor>&) override {}
  void broadcast(std::vector<torch::Tensor>&, int) override {}
};

bool same_weights(UNet& a, UNet& b) {
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

TEST(Train, DatasetMustMatchModel) {
  Dataset d;
  d.name = "rgb";
  d.images = torch::zeros({2, 3, 28, 28}, torch::kUInt8);
  EXPECT_THROW(Trainer(tiny_config(2), d, torch::kCPU), std::runtime_error);
}
