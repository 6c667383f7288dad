// likelihood.cpp — see likelihood.h.
#include "ddpm/diffusion/likelihood.h"

#include <cmath>
#include <stdexcept>

namespace ddpm {

torch::Tensor normal_kl(const torch::Tensor& mean1, const torch::Tensor& logvar1, const torch::Tensor& mean2,
                        const torch::Tensor& logvar2) {
  return 0.5 * (-1.0 + logvar2 - logvar1 + torch::exp(logvar1 - logvar2) + (mean1 - mean2).pow(2) * torch::exp(-logvar2));
}

torch::Tensor discretized_gaussian_log_likelihood(const torch::Tensor& x_, const torch::Tensor& means_,
                                                  const torch::Tensor& log_scales_) {
  auto x = x_.to(torch::kDouble), means = means_.to(torch::kDouble), log_scales = log_scales_.to(torch::kDouble);
  auto Phi = [](const torch::Tensor& z) { return 0.5 * torch::erfc(-z / std::sqrt(2.0)); };  // Φ(z)
  auto centred = x - means;
  auto inv_std = torch::exp(-log_scales);
  auto cdf_plus = Phi(inv_std * (centred + 1.0 / 255.0));   // P(X ≤ x + half a bin)
  auto cdf_min = Phi(inv_std * (centred - 1.0 / 255.0));    // P(X ≤ x − half a bin)
  // 1 − Φ(z) = Φ(−z): no cancellation in the top bin.
  auto one_minus_cdf_min = Phi(-inv_std * (centred - 1.0 / 255.0));
  const double tiny = 1e-300;
  auto log_cdf_plus = torch::log(cdf_plus.clamp_min(tiny));
  auto log_one_minus_cdf_min = torch::log(one_minus_cdf_min.clamp_min(tiny));
  auto log_probs = torch::log((cdf_plus - cdf_min).clamp_min(tiny));
  // The bottom bin is (−∞, −1 + 1/255], the top one [1 − 1/255, ∞).
  return torch::where(x < -0.999, log_cdf_plus, torch::where(x > 0.999, log_one_minus_cdf_min, log_probs));
}

torch::Tensor reverse_log_variance(const Schedule& s, VarianceType v) {
  if (v == VarianceType::FixedSmall) return s.posterior_log_variance_clipped.clone();
  auto lv = torch::log(s.betas.clone());
  lv[0] = std::log(s.posterior_variance[1].item<double>());
  return lv;
}

std::vector<KlStratum> vb_strata(int64_t T, int64_t steps) {
  std::vector<KlStratum> out;
  const int64_t n = T - 1;  // KL timesteps 1..T−1
  if (steps <= 0 || steps >= n) {
    for (int64_t t = 1; t <= n; ++t) out.push_back({t, t + 1});
    return out;
  }
  for (int64_t k = 0; k < steps; ++k) out.push_back({1 + (k * n) / steps, 1 + ((k + 1) * n) / steps});
  return out;
}

BoundTerms variational_bound(const Schedule& s, const EpsModel& model, const torch::Tensor& x0_,
                             VarianceType v, const std::vector<KlStratum>& strata, const NoiseFn& noise,
                             bool clip) {
  if (x0_.dim() != 4) throw std::runtime_error("variational_bound: x0 must be [B,C,H,W]");
  const auto& x0 = x0_;  // the model's dtype (float32 for a UNet; the tests use float64)
  const int64_t B = x0.size(0), T = s.T;
  const double D = double(x0.numel() / B);
  const auto logvar = reverse_log_variance(s, v);
  auto sum_dims = [](const torch::Tensor& e) { return e.flatten(1).sum(1); };  // [B,...] -> [B]
  const auto x0d = x0.to(torch::kDouble);

  // The reverse step's mean at code timesteps tt [B] from x_t (eq. 7 with x̂_0, eq. 15).
  auto p_mean = [&](const torch::Tensor& x_t, const torch::Tensor& tt) {
    auto eps = model(x_t, tt);                                             // [B,C,H,W]
    auto x0_hat = s.predict_x0_from_eps(x_t, tt, eps);
    if (clip) x0_hat = x0_hat.clamp(-1, 1);
    return s.q_posterior_mean(x0_hat, x_t, tt).to(torch::kCPU, torch::kDouble);
  };
  // x_t ~ q(x_t | x_0) (eq. 4) at code timesteps tt [B].
  auto draw = [&](const torch::Tensor& tt) { return s.q_sample(x0, tt, noise(x0.sizes()).to(x0.options())); };
  // Each image's timestep in [lo, hi): uniform, from the noise source (Φ of a standard normal is uniform).
  auto timesteps_in = [&](const KlStratum& st) -> torch::Tensor {  // [B] long, CPU
    if (st.hi - st.lo == 1) return torch::full({B}, st.lo, torch::kLong);
    auto u = 0.5 * torch::erfc(-noise({B}).to(torch::kCPU, torch::kDouble) / std::sqrt(2.0));  // [B] U(0, 1)
    return (st.lo + (u * double(st.hi - st.lo)).floor().to(torch::kLong)).clamp(st.lo, st.hi - 1);
  };
  auto per_image = [&](const torch::Tensor& table, const torch::Tensor& tt_cpu) {  // [T] f64 -> [B,1,1,1]
    return table.index_select(0, tt_cpu).view({B, 1, 1, 1});
  };

  BoundTerms r;
  // L_T: q(x_T | x_0) = N(√ᾱ_T x_0, 1 − ᾱ_T) against N(0, I).
  const double abT = s.alphas_cumprod[T - 1].item<double>();
  r.prior = sum_dims(normal_kl(std::sqrt(abT) * x0d, torch::full_like(x0d, std::log(1 - abT)), torch::zeros_like(x0d),
                               torch::zeros_like(x0d)));
  r.kl = torch::zeros({B}, torch::kDouble);
  for (const auto& st : strata) {
    if (st.lo < 1 || st.hi > T || st.hi <= st.lo) throw std::runtime_error("variational_bound: KL stratum outside 1..T−1");
    const auto tt_cpu = timesteps_in(st);                                  // [B]
    const auto tt = tt_cpu.to(x0.device());
    auto x_t = draw(tt);                                                   // [B,C,H,W]
    auto true_mean = s.q_posterior_mean(x0, x_t, tt).to(torch::kCPU, torch::kDouble);
    auto true_lv = per_image(s.posterior_log_variance_clipped, tt_cpu);   // [B,1,1,1]
    auto mean = p_mean(x_t, tt);
    auto lv = per_image(logvar, tt_cpu);
    r.kl += double(st.hi - st.lo) * sum_dims(normal_kl(true_mean, true_lv, mean, lv));
  }
  // L_0: −log p_θ(x_0 | x_1), decoder mean μ_θ(x_1) with log-scale ½ log σ²_1.
  const auto t0 = torch::zeros({B}, torch::dtype(torch::kLong).device(x0.device()));
  auto x_1 = draw(t0);
  auto mean0 = p_mean(x_1, t0);
  r.decoder = -sum_dims(discretized_gaussian_log_likelihood(x0d, mean0, torch::full_like(mean0, 0.5 * logvar[0].item<double>())));
  r.total = r.prior + r.kl + r.decoder;
  r.bpd = r.total / (D * std::log(2.0));
  return r;
}

}  // namespace ddpm
