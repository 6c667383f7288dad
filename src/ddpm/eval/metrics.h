// metrics.h — sample-quality metrics on feature vectors (from features.h): FID, KID, precision/recall, and the
// Inception Score on class probabilities. Pure math on [N,D] / [N,K] tensors; no network, no files. Everything is
// computed in float64.
//
//   FID   Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al. 2017, eq. 6):
//         d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½)
//         Tr((Σ₁Σ₂)^½) = Σ singular values of Σ₂^½ Σ₁^½ (the nuclear norm), with the symmetric square roots
//         from eigh and negative round-off eigenvalues clamped to 0: stable when the covariances are rank
//         deficient (fewer samples than dimensions), where scipy's sqrtm goes complex.
//   KID   unbiased MMD² with the kernel k(x, y) = (xᵀy / D + 1)³ (Bińkowski et al. 2018, §3 and eq. 4), averaged
//         over random subsets (the estimator of their code and clean-fid); reported with its std over subsets.
//   PR    improved precision and recall (Kynkäänniemi et al. 2019, eq. 1–2): a sample is inside a set's manifold
//         when it lies within the distance of some member of the set to that member's k-th nearest neighbour.
//   IS    Inception Score (Salimans et al. 2016, §4): exp(E_x KL(p(y|x) ‖ p(y))), p(y) the mean of p(y|x) over the
//         set, computed on each of S consecutive splits of the N rows (rows ⌊iN/S⌋ … ⌊(i+1)N/S⌋ − 1) and
//         reported as the mean and population std over the splits (the protocol of improved-gan's
//         inception_score/model.py and StyleGAN's metric). 0·log 0 = 0. Uniform p(y|x) gives 1; one-hot
//         predictions spread evenly over K classes give K.
// Size legend: N, M samples, D feature dimension.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace ddpm {

// The Gaussian statistics FID needs.
struct FeatureStats {
  torch::Tensor mu;     // [D] f64
  torch::Tensor sigma;  // [D,D] f64, unbiased (divides by N − 1)
  int64_t n = 0;
};
FeatureStats feature_stats(const torch::Tensor& features);  // [N,D], N ≥ 2

double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// Unbiased MMD² between x [N,D] and y [M,D] with the cubic polynomial kernel (N, M ≥ 2).
double mmd2_unbiased_poly(const torch::Tensor& x, const torch::Tensor& y);

struct KidResult {
  double mean = 0, std = 0;
  int64_t subsets = 0, subset_size = 0;
};
// MMD² over `subsets` random subsets of min(subset_size, N, M) rows of each set, drawn without replacement with
// a generator seeded by `seed` (the same inputs and seed give the same number).
KidResult kernel_inception_distance(const torch::Tensor& x, const torch::Tensor& y, int64_t subsets = 100,
                                    int64_t subset_size = 1000, uint64_t seed = 0);

struct PrecisionRecall {
  double precision = 0, recall = 0;
  int64_t k = 0;
};
// real [N,D], fake [M,D]; k-th nearest neighbour excluding the point itself (k < N, k < M). Distances are taken
// in blocks of rows, so memory stays O(block · max(N, M)).
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k = 3);

struct InceptionScore {
  double mean = 0, std = 0;
  int64_t splits = 0;
};
// probs [N,K]: rows of class probabilities (each ≥ 0, summing to 1 within 1e-3). Throws unless N ≥ splits ≥ 1.
InceptionScore inception_score(const torch::Tensor& probs, int64_t splits = 10);

}  // namespace ddpm
