// test_samplers.cpp — the DDPM sampler against closed-form oracles.
#include "ddpm/samplers/ddpm_sampler.h"
#include "ddpm/util/runtime.h"
#include "oracles.h"

#include <gtest/gtest.h>

using namespace ddpm;
using namespace ddpm::test;

TEST(Respacing, EvenlySpacedWithEnds) {
  EXPECT_EQ(respaced_timesteps(1000, 1000).size(), 1000u);
  auto ts = respaced_timesteps(1000, 4);
  EXPECT_EQ(ts, (std::vector<int64_t>{0, 333, 666, 999}));
  EXPECT_EQ(respaced_timesteps(1000, 1), (std::vector<int64_t>{999}));
  EXPECT_THROW(respaced_timesteps(1000, 0), std::runtime_error);
  EXPECT_THROW(respaced_timesteps(1000, 1001), std::runtime_error);
}

TEST(DDPMSampler, SingleImageOracleReturnsTheImage) {
  // With the exact ε of a one-image dataset, the chain must end on that image (its last step returns x̂_0).
  Schedule s(BetaSchedule::Linear, 1000);
  auto gen0 = make_generator(0);
  auto x_star = torch::rand({1, 1, 8, 8}, gen0) * 1.8 - 0.9;  // inside [-1, 1] so clipping is harmless
  auto model = single_image_eps(s, x_star);
  for (int64_t steps : {1000, 100, 10}) {
    for (auto var : {VarianceType::FixedLarge, VarianceType::FixedSmall}) {
      auto gen = make_generator(1);
      auto x_T = torch::randn({4, 1, 8, 8}, gen);
      DDPMSamplerOptions o;
      o.steps = steps;
      o.variance = var;
      auto x0 = ddpm_sample(s, model, x_T, generator_noise(gen), o);
      EXPECT_LT((x0 - x_star).abs().max().item<double>(), 1e-4) << "steps=" << steps;
    }
  }
}

TEST(DDPMSampler, GaussianOracleHasTheDataStd) {
  // Data N(0, s²): with its exact ε, samples must have std ≈ s (no clipping: the data is unbounded).
  Schedule s(BetaSchedule::Linear, 1000);
  for (double sd : {0.5, 1.0}) {
    auto gen = make_generator(2);
    auto x_T = torch::randn({4000, 1, 2, 2}, gen);
    DDPMSamplerOptions o;
    o.clip_x0 = false;
    o.variance = VarianceType::FixedSmall;
    auto x0 = ddpm_sample(s, gaussian_eps(s, sd), x_T, generator_noise(gen), o);
    EXPECT_NEAR(x0.std().item<double>(), sd, 0.03 * sd) << "sd=" << sd;
    EXPECT_NEAR(x0.mean().item<double>(), 0.0, 0.03) << "sd=" << sd;
  }
}

TEST(DDPMSampler, FixedLargeGaussianOracleWithinTolerance) {
  // σ² = β_t over-disperses slightly; the DDPM paper notes both choices give similar results at T = 1000.
  Schedule s(BetaSchedule::Linear, 1000);
  auto gen = make_generator(3);
  auto x_T = torch::randn({4000, 1, 2, 2}, gen);
  DDPMSamplerOptions o;
  o.clip_x0 = false;
  o.variance = VarianceType::FixedLarge;
  auto x0 = ddpm_sample(s, gaussian_eps(s, 0.5), x_T, generator_noise(gen), o);
  EXPECT_NEAR(x0.std().item<double>(), 0.5, 0.05);
}

TEST(DDPMSampler, SameSeedSameImages) {
  Schedule s(BetaSchedule::Linear, 100);
  auto model = gaussian_eps(s, 0.7);
  auto run = [&](uint64_t seed) {
    auto gen = make_generator(seed);
    auto x_T = torch::randn({3, 1, 4, 4}, gen);
    return ddpm_sample(s, model, x_T, generator_noise(gen), {});
  };
  EXPECT_TRUE(torch::equal(run(5), run(5)));
  EXPECT_FALSE(torch::equal(run(5), run(6)));
}

TEST(DDPMSampler, ReportsProgress) {
  Schedule s(BetaSchedule::Linear, 50);
  int64_t calls = 0, last = 0;
  DDPMSamplerOptions o;
  o.steps = 20;
  o.on_step = [&](int64_t i, int64_t n) {
    ++calls;
    last = i;
    EXPECT_EQ(n, 20);
  };
  auto gen = make_generator(0);
  ddpm_sample(s, gaussian_eps(s, 1.0), torch::randn({1, 1, 2, 2}), generator_noise(gen), o);
  EXPECT_EQ(calls, 20);
  EXPECT_EQ(last, 20);
}

TEST(Noise, PerImageStreamsDoNotDependOnBatching) {
  PerImageNoise a(11, 6), b(11, 6);
  auto whole = a.draw(0, {6, 1, 3, 3});
  auto first = b.draw(0, {4, 1, 3, 3});
  auto rest = b.draw(4, {2, 1, 3, 3});
  EXPECT_TRUE(torch::equal(torch::cat({first, rest}), whole));
  // Later draws continue each image's own stream.
  auto again_a = a.slice(2)({2, 1, 3, 3});
  auto again_b = b.draw(2, {2, 1, 3, 3});
  EXPECT_TRUE(torch::equal(again_a, again_b));
  EXPECT_FALSE(torch::equal(again_a, whole.slice(0, 2, 4)));
  EXPECT_THROW(a.draw(5, {2, 1, 3, 3}), c10::Error);
}
