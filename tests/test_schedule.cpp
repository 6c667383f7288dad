// test_schedule.cpp — the forward process against pinned values and closed forms.
#include "ddpm/diffusion/schedule.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace ddpm;

TEST(Schedule, LinearBetasEndpoints) {
  Schedule s(BetaSchedule::Linear, 1000);
  EXPECT_EQ(s.betas.scalar_type(), torch::kFloat64);
  EXPECT_NEAR(s.betas[0].item<double>(), 1e-4, 1e-15);
  EXPECT_NEAR(s.betas[999].item<double>(), 0.02, 1e-15);
}

TEST(Schedule, PinnedFixedSmallVariance) {
  // Design notes §5: β̃_t ≈ 0 at t = 0, ≈ 0.00979 at t = 487, ≈ 0.02 at t = 999 (linear, T = 1000).
  Schedule s(BetaSchedule::Linear, 1000);
  EXPECT_NEAR(s.posterior_variance[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(s.posterior_variance[487].item<double>(), 0.00979, 5e-6);
  EXPECT_NEAR(s.posterior_variance[999].item<double>(), 0.02, 5e-5);
}

TEST(Schedule, CosineMatchesFormula) {
  const int64_t T = 1000;
  Schedule s(BetaSchedule::Cosine, T);
  auto f = [&](double t) {
    const double v = std::cos((t / T + 0.008) / 1.008 * M_PI / 2);
    return v * v;
  };
  for (int64_t t : {0, 1, 100, 500, 900, 980}) {
    // ᾱ_t (code index t = paper step t+1) = f(t+1)/f(0) wherever β is not clipped.
    EXPECT_NEAR(s.alphas_cumprod[t].item<double>(), f(t + 1) / f(0), 1e-10) << "t=" << t;
  }
  EXPECT_LE(s.betas.max().item<double>(), 0.999 + 1e-15);
  EXPECT_NEAR(s.betas[T - 1].item<double>(), 0.999, 1e-12);  // the clip is active at the very end
}

TEST(Schedule, LongScheduleT4000) {
  for (auto kind : {BetaSchedule::Linear, BetaSchedule::Cosine}) {
    Schedule s(kind, 4000);
    EXPECT_EQ(s.alphas_cumprod.size(0), 4000);
    EXPECT_TRUE(torch::isfinite(s.posterior_log_variance_clipped).all().item<bool>());
    EXPECT_TRUE((s.alphas_cumprod.slice(0, 1) < s.alphas_cumprod.slice(0, 0, 3999)).all().item<bool>());
    EXPECT_LT(s.alphas_cumprod[3999].item<double>(), 1e-3);
  }
}

TEST(Schedule, ClosedFormMatchesIteration) {
  // Iterate x_t = √(1−β_t) x_{t−1} + √β_t ε from a fixed x_0 over many samples; compare mean and std with
  // the one-shot q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)  (eq. 4).
  Schedule s(BetaSchedule::Linear, 1000);
  torch::manual_seed(0);
  const int64_t n = 20000;
  const double x0 = 0.7;
  auto x = torch::full({n}, x0, torch::kFloat64);
  const auto* b = s.betas.data_ptr<double>();
  for (int64_t t = 0; t < 1000; ++t) {
    x = std::sqrt(1 - b[t]) * x + std::sqrt(b[t]) * torch::randn({n}, torch::kFloat64);
    if (t == 99 || t == 499 || t == 999) {
      const double ac = s.alphas_cumprod[t].item<double>();
      EXPECT_NEAR(x.mean().item<double>(), std::sqrt(ac) * x0, 0.02) << "t=" << t;
      EXPECT_NEAR(x.std().item<double>(), std::sqrt(1 - ac), 0.02) << "t=" << t;
    }
  }
}

TEST(Schedule, X0FromEpsInvertsQSample) {
  Schedule s;
  torch::manual_seed(1);
  auto x0 = torch::rand({4, 1, 8, 8}) * 2 - 1;
  auto eps = torch::randn({4, 1, 8, 8});
  auto t = torch::tensor({0, 10, 500, 999}, torch::kLong);
  auto xt = s.q_sample(x0, t, eps);
  EXPECT_TRUE(torch::allclose(s.predict_x0_from_eps(xt, t, eps), x0, 1e-4, 2e-3));
}

TEST(Schedule, PosteriorMeanIsExactForConsistentPair) {
  // With x_t built from x_0, the posterior mean interpolates them with eq. 7's coefficients; at t = 0 it is x_0.
  Schedule s;
  auto x0 = torch::full({1, 1, 2, 2}, 0.5);
  auto xt = torch::full({1, 1, 2, 2}, -0.25);
  auto t0 = torch::tensor({0}, torch::kLong);
  EXPECT_TRUE(torch::allclose(s.q_posterior_mean(x0, xt, t0), x0, 1e-6, 1e-6));
  auto t = torch::tensor({300}, torch::kLong);
  const double c1 = s.posterior_mean_coef1[300].item<double>(), c2 = s.posterior_mean_coef2[300].item<double>();
  EXPECT_NEAR(s.q_posterior_mean(x0, xt, t)[0][0][0][0].item<double>(), c1 * 0.5 + c2 * -0.25, 1e-6);
}

TEST(Schedule, RejectsBadNames) {
  EXPECT_THROW(parse_beta_schedule("quadratic"), std::runtime_error);
  EXPECT_THROW(parse_variance_type("learned"), std::runtime_error);
  EXPECT_THROW(make_betas(BetaSchedule::Linear, 1), std::runtime_error);
}
