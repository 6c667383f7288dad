// test_metrics.cpp — FID, KID and precision/recall (metrics.h) against closed forms, hand computations and an
// independent matrix square root.
#include "ddpm/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>

using namespace ddpm;

namespace {
torch::Tensor randn(std::vector<int64_t> shape, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  return torch::randn(shape, g, torch::kDouble);
}

// Tr((Σ₁Σ₂)^½) the other way: the eigenvalues of the (non-symmetric) product Σ₁Σ₂ are real and ≥ 0; sum their
// square roots (general eig, no symmetric square roots, no SVD).
double trace_sqrt_product_eig(const torch::Tensor& s1, const torch::Tensor& s2) {
  auto ev = torch::linalg_eigvals(s1.matmul(s2));
  auto re = torch::real(ev).clamp_min(0);
  return re.sqrt().sum().item<double>();
}

double fid_independent(const FeatureStats& a, const FeatureStats& b) {
  return (a.mu - b.mu).pow(2).sum().item<double>() + a.sigma.trace().item<double>() + b.sigma.trace().item<double>() -
         2 * trace_sqrt_product_eig(a.sigma, b.sigma);
}
}  // namespace

TEST(Metrics, FeatureStatsAreMeanAndUnbiasedCovariance) {
  auto f = torch::tensor({{1.0, 2.0}, {3.0, 6.0}, {5.0, 4.0}}, torch::kDouble);
  auto s = feature_stats(f);
  EXPECT_NEAR(s.mu[0].item<double>(), 3.0, 1e-12);
  EXPECT_NEAR(s.mu[1].item<double>(), 4.0, 1e-12);
  // x: -2, 0, 2 ; y: -2, 2, 0 -> var x = 8/2 = 4, var y = 8/2 = 4, cov = (4 + 0 + 0)/2 = 2
  EXPECT_NEAR(s.sigma[0][0].item<double>(), 4.0, 1e-12);
  EXPECT_NEAR(s.sigma[1][1].item<double>(), 4.0, 1e-12);
  EXPECT_NEAR(s.sigma[0][1].item<double>(), 2.0, 1e-12);
  EXPECT_EQ(s.n, 3);
}

TEST(Metrics, FidOfASetWithItselfIsZero) {
  auto f = randn({500, 64}, 1) * 3 + 1;
  auto s = feature_stats(f);
  const double scale = 2 * s.sigma.trace().item<double>();
  EXPECT_LE(frechet_distance(s, s), 1e-6 * scale);
  EXPECT_LE(frechet_distance(s, feature_stats(f.clone())), 1e-6 * scale);
}

TEST(Metrics, FidHandComputedDiagonalCase) {
  // Σ₁ = diag(1, 4), Σ₂ = diag(4, 1): (Σ₁Σ₂)^½ = diag(2, 2); Tr = 5 + 5 − 2·4 = 2; ‖μ₁ − μ₂‖² = 1 + 4 = 5.
  FeatureStats a{torch::tensor({0.0, 0.0}, torch::kDouble), torch::diag(torch::tensor({1.0, 4.0}, torch::kDouble)), 10};
  FeatureStats b{torch::tensor({1.0, 2.0}, torch::kDouble), torch::diag(torch::tensor({4.0, 1.0}, torch::kDouble)), 10};
  EXPECT_NEAR(frechet_distance(a, b), 7.0, 1e-10);
}

TEST(Metrics, FidMatchesClosedFormForGaussians) {
  // Two Gaussians with known, non-commuting covariances: the formula on the true parameters, computed with eigvals
  // of the product, against our eigh + SVD route.
  const int64_t D = 16;
  auto A = randn({D, D}, 2), B = randn({D, D}, 3);
  FeatureStats a{randn({D}, 4), A.matmul(A.t()) / D + 0.1 * torch::eye(D, torch::kDouble), 1000};
  FeatureStats b{randn({D}, 5), B.matmul(B.t()) / D + 0.1 * torch::eye(D, torch::kDouble), 1000};
  const double ours = frechet_distance(a, b), ref = fid_independent(a, b);
  EXPECT_NEAR(ours, ref, 1e-8 * std::max(1.0, ref));
  EXPECT_GT(ours, 0.0);
  // And from samples: 20000 draws from each Gaussian give statistics whose FID approaches the true one.
  auto la = torch::linalg_cholesky(a.sigma), lb = torch::linalg_cholesky(b.sigma);
  auto xa = randn({20000, D}, 6).matmul(la.t()) + a.mu, xb = randn({20000, D}, 7).matmul(lb.t()) + b.mu;
  EXPECT_NEAR(frechet_distance(feature_stats(xa), feature_stats(xb)), ref, 0.05 * ref);
}

TEST(Metrics, FidIsStableForRankDeficientCovariances) {
  // 20 samples in 64 dimensions: Σ has rank 19. A shifted copy has the same Σ, so FID = ‖c‖² exactly; the
  // naive sqrtm of a singular product goes complex or loses digits here.
  auto f = randn({20, 64}, 8);
  auto c = randn({64}, 9) * 0.1;
  auto s = feature_stats(f), t = feature_stats(f + c);
  const double expect = c.pow(2).sum().item<double>();
  const double got = frechet_distance(s, t);
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_NEAR(got, expect, 1e-6 * s.sigma.trace().item<double>());
  EXPECT_LE(frechet_distance(s, s), 1e-6 * s.sigma.trace().item<double>());
  // Two different rank-deficient sets: finite, positive, and equal to the eigvals route.
  auto u = feature_stats(randn({30, 64}, 10) * 1.5);
  const double d = frechet_distance(s, u), ref = fid_independent(s, u);
  EXPECT_TRUE(std::isfinite(d));
  EXPECT_GT(d, 0);
  EXPECT_NEAR(d, ref, 1e-6 * ref);
}

TEST(Metrics, KidHandComputedCase) {
  // k(a, b) = (aᵀb / 2 + 1)³. Within x and within y the off-diagonal dot products are 0 -> k = 1, so both
  // within terms are 2/(2·1) = 1. Across: x₁·y₁ = x₂·y₁ = 1 -> 1.5³ = 3.375, x·y₂ = 0 -> 1; sum 8.75.
  // MMD² = 1 + 1 − 2·8.75/4 = −2.375 (the unbiased estimate can be negative).
  auto x = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kDouble);
  auto y = torch::tensor({{1.0, 1.0}, {0.0, 0.0}}, torch::kDouble);
  EXPECT_NEAR(mmd2_unbiased_poly(x, y), -2.375, 1e-12);
}

TEST(Metrics, KidMatchesNaiveLoops) {
  auto x = randn({7, 5}, 11), y = randn({9, 5}, 12) + 0.5;
  auto k = [&](const torch::Tensor& a, int64_t i, const torch::Tensor& b, int64_t j) {
    double dot = 0;
    for (int64_t d = 0; d < 5; ++d) dot += a[i][d].item<double>() * b[j][d].item<double>();
    return std::pow(dot / 5.0 + 1.0, 3);
  };
  double sxx = 0, syy = 0, sxy = 0;
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 7; ++j)
      if (i != j) sxx += k(x, i, x, j);
  for (int64_t i = 0; i < 9; ++i)
    for (int64_t j = 0; j < 9; ++j)
      if (i != j) syy += k(y, i, y, j);
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 9; ++j) sxy += k(x, i, y, j);
  const double naive = sxx / (7 * 6) + syy / (9 * 8) - 2 * sxy / (7 * 9);
  EXPECT_NEAR(mmd2_unbiased_poly(x, y), naive, 1e-10);
  // One subset holding every sample is the full estimate (the estimator does not depend on order).
  auto r = kernel_inception_distance(x, y.narrow(0, 0, 7), 1, 100, 0);
  EXPECT_EQ(r.subset_size, 7);
  EXPECT_NEAR(r.mean, mmd2_unbiased_poly(x, y.narrow(0, 0, 7)), 1e-10);
}

TEST(Metrics, KidIsNearZeroForOneDistributionAndReproducible) {
  auto x = randn({2000, 16}, 13), y = randn({2000, 16}, 14), z = randn({2000, 16}, 15) + 1.0;
  auto same = kernel_inception_distance(x, y, 20, 500, 3);
  auto diff = kernel_inception_distance(x, z, 20, 500, 3);
  EXPECT_LT(std::abs(same.mean), 3 * same.std + 1e-3);
  EXPECT_GT(diff.mean, 10 * std::abs(same.mean) + 0.1);
  EXPECT_EQ(kernel_inception_distance(x, z, 20, 500, 3).mean, diff.mean);  // same seed, same number
}

TEST(Metrics, PrecisionRecallOfIdenticalSetsIsOne) {
  auto x = randn({300, 8}, 16);
  auto pr = precision_recall(x, x.clone(), 3);
  EXPECT_DOUBLE_EQ(pr.precision, 1.0);
  EXPECT_DOUBLE_EQ(pr.recall, 1.0);
}

TEST(Metrics, PrecisionRecallOfDisjointClustersIsZero) {
  auto real = randn({300, 8}, 17), fake = randn({200, 8}, 18) + 100.0;
  auto pr = precision_recall(real, fake, 3);
  EXPECT_DOUBLE_EQ(pr.precision, 0.0);
  EXPECT_DOUBLE_EQ(pr.recall, 0.0);
}

TEST(Metrics, PrecisionCountsSamplesOnTheDataManifold) {
  // Half the samples are copies of real points (inside, at distance 0), half are far away.
  auto real = randn({200, 8}, 19);
  auto fake = torch::cat({real.narrow(0, 0, 100), randn({100, 8}, 20) + 100.0});
  EXPECT_DOUBLE_EQ(precision_recall(real, fake, 3).precision, 0.5);
}

TEST(Metrics, BadInputIsRefused) {
  EXPECT_THROW(feature_stats(torch::zeros({1, 4})), std::runtime_error);
  EXPECT_THROW(feature_stats(torch::zeros({4})), std::runtime_error);
  EXPECT_THROW(mmd2_unbiased_poly(torch::zeros({3, 4}), torch::zeros({3, 5})), std::runtime_error);
  EXPECT_THROW(precision_recall(torch::zeros({3, 4}), torch::zeros({10, 4}), 3), std::runtime_error);
  FeatureStats a = feature_stats(torch::randn({5, 3})), b = feature_stats(torch::randn({5, 4}));
  EXPECT_THROW(frechet_distance(a, b), std::runtime_error);
}

TEST(Metrics, InceptionScoreOfUniformPredictionsIsOne) {
  auto r = inception_score(torch::full({100, 7}, 1.0 / 7), 10);
  EXPECT_NEAR(r.mean, 1.0, 1e-12);
  EXPECT_NEAR(r.std, 0.0, 1e-12);
  EXPECT_EQ(r.splits, 10);
}

TEST(Metrics, InceptionScoreOfEvenlySpreadOneHotPredictionsIsTheClassCount) {
  // 200 one-hot rows cycling over K = 10 classes: every split of 20 holds each class twice, p(y) is uniform,
  // KL(p(y|x) ‖ p(y)) = log 10 for every x, so IS = 10 in every split.
  auto labels = torch::arange(200, torch::kLong).remainder(10);
  auto p = torch::one_hot(labels, 10).to(torch::kDouble);
  auto r = inception_score(p, 10);
  EXPECT_NEAR(r.mean, 10.0, 1e-9);
  EXPECT_NEAR(r.std, 0.0, 1e-9);
  // All in one class: p(y|x) = p(y), IS = 1.
  EXPECT_NEAR(inception_score(torch::one_hot(torch::zeros({50}, torch::kLong), 10).to(torch::kDouble), 5).mean, 1.0,
              1e-12);
}

TEST(Metrics, InceptionScoreHandComputedTwoClassCase) {
  // One split of two rows (0.9, 0.1) and (0.1, 0.9): p(y) = (0.5, 0.5), KL = 0.9 ln 1.8 + 0.1 ln 0.2 for each row.
  auto p = torch::tensor({0.9, 0.1, 0.1, 0.9}, torch::kDouble).view({2, 2});
  const double kl = 0.9 * std::log(1.8) + 0.1 * std::log(0.2);
  EXPECT_NEAR(inception_score(p, 1).mean, std::exp(kl), 1e-12);
  // Two splits of one row each: p(y) = p(y|x) in each, IS = 1 ± 0.
  EXPECT_NEAR(inception_score(p, 2).mean, 1.0, 1e-12);
  // Splits of unequal scores: mean and population std over them. Split 1 = the pair above, split 2 = two rows of
  // one class (IS 1).
  auto q = torch::cat({p, torch::tensor({1.0, 0.0, 1.0, 0.0}, torch::kDouble).view({2, 2})});
  auto r = inception_score(q, 2);
  EXPECT_NEAR(r.mean, (std::exp(kl) + 1.0) / 2, 1e-12);
  EXPECT_NEAR(r.std, (std::exp(kl) - 1.0) / 2, 1e-12);
}

TEST(Metrics, InceptionScoreRefusesBadInput) {
  EXPECT_THROW(inception_score(torch::full({5, 3}, 1.0 / 3), 10), std::runtime_error);  // fewer rows than splits
  EXPECT_THROW(inception_score(torch::full({5, 3}, 1.0 / 3), 0), std::runtime_error);
  EXPECT_THROW(inception_score(torch::full({10, 3}, 0.5), 2), std::runtime_error);       // rows sum to 1.5
  EXPECT_THROW(inception_score(torch::tensor({1.5, -0.5}).view({1, 2}), 1), std::runtime_error);
  EXPECT_THROW(inception_score(torch::ones({4}), 1), std::runtime_error);
}
