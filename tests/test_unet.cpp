// test_unet.cpp — shapes, exact parameter counts, gradient flow.
#include "ddpm/nn/unet.h"

#include <gtest/gtest.h>

using namespace ddpm;

TEST(UNet, ExactParameterCounts) {
  const std::pair<const char*, int64_t> expected[] = {
      {"cifar10", 35746307}, {"fmnist", 6469889}, {"fmnist-small", 1062497}, {"tiny", 701345}};
  for (const auto& [name, n] : expected) {
    UNet net(preset_model(name));
    EXPECT_EQ(count_parameters(*net), n) << name;
  }
}

TEST(UNet, OutputShapeEqualsInputShapeForEveryPreset) {
  torch::NoGradGuard ng;
  for (const auto& name : preset_names()) {
    const auto cfg = preset_model(name);
    Backbone net = make_backbone(cfg);  // the DiT presets too
    net->eval();
    auto x = torch::randn({2, cfg.channels, cfg.image_size, cfg.image_size});
    auto y = net->forward(x, torch::tensor({0, 999}, torch::kLong));
    EXPECT_EQ(y.sizes(), x.sizes()) << name;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << name;
  }
}

TEST(UNet, GradientsReachEveryParameter) {
  torch::manual_seed(0);
  UNet net(preset_model("tiny"));
  auto x = torch::randn({2, 1, 28, 28});
  auto loss = (net->forward(x, torch::tensor({3, 700}, torch::kLong)) - x).pow(2).mean();
  loss.backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key() << " got no gradient";
  }
}

TEST(UNet, DependsOnTimestep) {
  torch::NoGradGuard ng;
  torch::manual_seed(0);
  UNet net(preset_model("tiny"));
  // DDPM's initialisation makes every residual branch ~0; give all weights real values for this check.
  for (auto& p : net->parameters()) p.normal_(0, 0.05);
  auto x = torch::randn({1, 1, 28, 28});
  auto a = net->forward(x, torch::tensor({10}, torch::kLong));
  auto b = net->forward(x, torch::tensor({900}, torch::kLong));
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-4);
}

TEST(UNet, RejectsWrongInputShape) {
  UNet net(preset_model("tiny"));
  EXPECT_THROW(net->forward(torch::randn({1, 3, 28, 28}), torch::tensor({1}, torch::kLong)), c10::Error);
  EXPECT_THROW(net->forward(torch::randn({1, 1, 28, 28}), torch::tensor({1, 2}, torch::kLong)), c10::Error);
}

TEST(UNet, TimestepEmbeddingMatchesFormula) {
  auto e = timestep_embedding(torch::tensor({0.0, 5.0}), 8);  // half = 4, freq_i = 10000^(-i/3)
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{2, 8}));
  EXPECT_NEAR(e[0][0].item<double>(), 0.0, 1e-7);   // sin(0)
  EXPECT_NEAR(e[0][4].item<double>(), 1.0, 1e-7);   // cos(0)
  const double f1 = std::pow(10000.0, -1.0 / 3.0);
  EXPECT_NEAR(e[1][1].item<double>(), std::sin(5.0 * f1), 1e-5);
  EXPECT_NEAR(e[1][5].item<double>(), std::cos(5.0 * f1), 1e-5);
}

TEST(UNet, FlopCountIsPlausible) {
  // cifar10: the DDPM model is ~6.1 GMAC (12.2 GFLOP) per 32×32 forward; our count includes attention matmuls.
  UNet net(preset_model("cifar10"));
  EXPECT_GT(net->forward_flops_per_image(), 11e9);
  EXPECT_LT(net->forward_flops_per_image(), 13.5e9);
}

TEST(UNet, ClassConditionalAddsALabelEmbedding) {
  torch::NoGradGuard ng;
  auto cfg = preset_model("tiny");
  UNet plain(cfg);
  cfg.num_classes = 10;
  torch::manual_seed(0);
  UNet cond(cfg);
  // One embedding row per class plus the null label, D = 4·ch wide; nothing else changes.
  EXPECT_EQ(count_parameters(*cond), count_parameters(*plain) + 11 * 4 * cfg.ch);
  EXPECT_EQ(cond->named_parameters().find("label_emb.weight")->sizes(), (std::vector<int64_t>{11, 4 * cfg.ch}));
  for (auto& p : cond->parameters()) p.normal_(0, 0.05);
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({100, 100}, torch::kLong);
  auto a = cond->forward(x, t, torch::tensor({1, 1}, torch::kLong));
  auto b = cond->forward(x, t, torch::tensor({2, 2}, torch::kLong));
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-4);
  // No labels means the null label.
  auto n1 = cond->forward(x, t);
  auto n2 = cond->forward(x, t, torch::tensor({10, 10}, torch::kLong));
  EXPECT_TRUE(torch::equal(n1, n2));
  EXPECT_THROW(cond->forward(x, t, torch::tensor({11, 0}, torch::kLong)), c10::Error);  // out of the table
  EXPECT_THROW(plain->forward(x, t, torch::tensor({1, 1}, torch::kLong)), c10::Error);  // unconditional model
}
