// metrics.cpp — see metrics.h.
#include "ddpm/eval/metrics.h"

#include "ddpm/util/runtime.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace ddpm {
namespace {

void check_features(const torch::Tensor& f, const char* what, int64_t min_rows) {
  if (f.dim() != 2) throw std::runtime_error(std::string(what) + ": features must be [N, D], got " + c10::str(f.sizes()));
  if (f.size(0) < min_rows)
    throw std::runtime_error(std::string(what) + ": needs at least " + std::to_string(min_rows) + " samples, got " +
                             std::to_string(f.size(0)));
}

// Symmetric PSD square root via eigh, eigenvalues clamped at 0.                          [D,D] -> [D,D]
torch::Tensor sqrt_psd(const torch::Tensor& a) {
  auto [evals, evecs] = torch::linalg_eigh(a, "L");
  return evecs.matmul(torch::diag(evals.clamp_min(0).sqrt())).matmul(evecs.transpose(0, 1));
}

}  // namespace

FeatureStats feature_stats(const torch::Tensor& features) {
  check_features(features, "feature_stats", 2);
  auto f = features.to(torch::kCPU, torch::kDouble);
  FeatureStats s;
  s.n = f.size(0);
  s.mu = f.mean(0);                                    // [D]
  auto c = f - s.mu;                                   // [N,D]
  s.sigma = c.transpose(0, 1).matmul(c) / double(s.n - 1);  // [D,D]
  return s;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (!a.mu.defined() || !b.mu.defined() || a.mu.sizes() != b.mu.sizes())
    throw std::runtime_error("frechet_distance: statistics of different feature dimensions");
  const double mean_term = (a.mu - b.mu).pow(2).sum().item<double>();
  const auto s1 = a.sigma.to(torch::kDouble), s2 = b.sigma.to(torch::kDouble);
  // Tr((Σ₁Σ₂)^½) = ‖Σ₂^½ Σ₁^½‖_* : (Σ₁Σ₂)^½ is similar to (Σ₁^½ Σ₂ Σ₁^½)^½, whose eigenvalues are the singular
  // values of Σ₂^½ Σ₁^½.
  const double tr_covmean = torch::linalg_svdvals(sqrt_psd(s2).matmul(sqrt_psd(s1))).sum().item<double>();
  const double d = mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2.0 * tr_covmean;
  return d < 0 ? 0.0 : d;  // round-off can make identical statistics give −1e-13
}

double mmd2_unbiased_poly(const torch::Tensor& x_, const torch::Tensor& y_) {
  check_features(x_, "kid", 2);
  check_features(y_, "kid", 2);
  auto x = x_.to(torch::kCPU, torch::kDouble), y = y_.to(torch::kCPU, torch::kDouble);
  if (x.size(1) != y.size(1)) throw std::runtime_error("kid: feature sets of different dimensions");
  const double D = double(x.size(1)), n = double(x.size(0)), m = double(y.size(0));
  auto k = [&](const torch::Tensor& a, const torch::Tensor& b) { return (a.matmul(b.transpose(0, 1)) / D + 1).pow(3); };
  auto kxx = k(x, x), kyy = k(y, y), kxy = k(x, y);  // [N,N] [M,M] [N,M]
  const double sxx = (kxx.sum() - kxx.diagonal().sum()).item<double>();
  const double syy = (kyy.sum() - kyy.diagonal().sum()).item<double>();
  const double sxy = kxy.sum().item<double>();
  // Bińkowski et al. 2018, eq. 4: the i ≠ j sums of the within-set kernels, all pairs across the sets.
  return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m);
}

KidResult kernel_inception_distance(const torch::Tensor& x, const torch::Tensor& y, int64_t subsets,
                                    int64_t subset_size, uint64_t seed) {
  check_features(x, "kid", 2);
  check_features(y, "kid", 2);
  if (subsets < 1 || subset_size < 2) throw std::runtime_error("kid: needs ≥ 1 subset of ≥ 2 samples");
  const int64_t m = std::min({subset_size, x.size(0), y.size(0)});
  auto gen = make_generator(seed);
  std::vector<double> v;
  for (int64_t s = 0; s < subsets; ++s) {
    auto ix = torch::randperm(x.size(0), gen).narrow(0, 0, m);
    auto iy = torch::randperm(y.size(0), gen).narrow(0, 0, m);
    v.push_back(mmd2_unbiased_poly(x.index_select(0, ix), y.index_select(0, iy)));
  }
  KidResult r;
  r.subsets = subsets;
  r.subset_size = m;
  for (double e : v) r.mean += e;
  r.mean /= double(v.size());
  for (double e : v) r.std += (e - r.mean) * (e - r.mean);
  r.std = v.size() > 1 ? std::sqrt(r.std / double(v.size() - 1)) : 0.0;
  return r;
}

namespace {
constexpr int64_t kBlock = 1024;

// Distance of each row of `a` to its k-th nearest other row (the row itself, at distance 0, excluded).  [N]
torch::Tensor kth_neighbour_radius(const torch::Tensor& a, int64_t k) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < a.size(0); i += kBlock) {
    auto d = torch::cdist(a.narrow(0, i, std::min(kBlock, a.size(0) - i)), a);  // [b,N]
    // k + 1 smallest: the first is the point itself.
    out.push_back(std::get<0>(d.topk(k + 1, 1, /*largest=*/false, /*sorted=*/true)).select(1, k));
  }
  return torch::cat(out);
}

// Fraction of rows of `q` within radius[j] of some row j of `ref`.
double coverage(const torch::Tensor& ref, const torch::Tensor& radius, const torch::Tensor& q) {
  int64_t inside = 0;
  for (int64_t i = 0; i < q.size(0); i += kBlock) {
    auto d = torch::cdist(q.narrow(0, i, std::min(kBlock, q.size(0) - i)), ref);  // [b,N]
    inside += (d <= radius.unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return double(inside) / double(q.size(0));
}
}  // namespace

PrecisionRecall precision_recall(const torch::Tensor& real_, const torch::Tensor& fake_, int64_t k) {
  check_features(real_, "precision/recall (reference)", k + 1);
  check_features(fake_, "precision/recall (samples)", k + 1);
  if (k < 1) throw std::runtime_error("precision/recall: k must be ≥ 1");
  auto real = real_.to(torch::kCPU, torch::kDouble), fake = fake_.to(torch::kCPU, torch::kDouble);
  PrecisionRecall r;
  r.k = k;
  r.precision = coverage(real, kth_neighbour_radius(real, k), fake);  // samples on the data manifold
  r.recall = coverage(fake, kth_neighbour_radius(fake, k), real);     // data on the samples' manifold
  return r;
}

InceptionScore inception_score(const torch::Tensor& probs_, int64_t splits) {
  if (probs_.dim() != 2 || probs_.size(1) < 1)
    throw std::runtime_error("inception score: expected class probabilities [N,K], got " + c10::str(probs_.sizes()));
  const int64_t N = probs_.size(0);
  if (splits < 1 || N < splits)
    throw std::runtime_error("inception score: " + std::to_string(N) + " images cannot make " +
                             std::to_string(splits) + " splits (need at least one image per split)");
  auto p = probs_.to(torch::kCPU, torch::kDouble);  // [N,K]
  const bool valid = p.isfinite().all().item<bool>() && p.min().item<double>() >= 0 &&
                     (p.sum(1) - 1).abs().max().item<double>() <= 1e-3;
  if (!valid) throw std::runtime_error("inception score: rows are not probability vectors (>= 0, summing to 1)");
  std::vector<double> scores;
  for (int64_t i = 0; i < splits; ++i) {
    const int64_t lo = i * N / splits, hi = (i + 1) * N / splits;
    auto part = p.narrow(0, lo, hi - lo);                       // [n,K]
    auto py = part.mean(0, /*keepdim=*/true);                   // p(y) over the split  [1,K]
    auto kl = torch::xlogy(part, part) - torch::xlogy(part, py.expand_as(part));  // p log p − p log p(y)  [n,K]
    scores.push_back(std::exp(kl.sum(1).mean().item<double>()));  // exp E_x KL(p(y|x) ‖ p(y))
  }
  InceptionScore r;
  r.splits = splits;
  for (double s : scores) r.mean += s / static_cast<double>(splits);
  for (double s : scores) r.std += (s - r.mean) * (s - r.mean) / static_cast<double>(splits);
  r.std = std::sqrt(r.std);
  return r;
}

}  // namespace ddpm
