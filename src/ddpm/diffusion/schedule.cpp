// schedule.cpp — see schedule.h for the notation table.
#include "ddpm/diffusion/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ddpm {

BetaSchedule parse_beta_schedule(const std::string& name) {
  if (name == "linear") return BetaSchedule::Linear;
  if (name == "cosine") return BetaSchedule::Cosine;
  throw std::runtime_error("unknown beta schedule '" + name + "' (expected linear or cosine)");
}

std::string to_string(BetaSchedule s) { return s == BetaSchedule::Linear ? "linear" : "cosine"; }

VarianceType parse_variance_type(const std::string& name) {
  if (name == "fixed_small") return VarianceType::FixedSmall;
  if (name == "fixed_large") return VarianceType::FixedLarge;
  throw std::runtime_error("unknown variance type '" + name + "' (expected fixed_small or fixed_large)");
}

std::string to_string(VarianceType v) { return v == VarianceType::FixedSmall ? "fixed_small" : "fixed_large"; }

torch::Tensor make_betas(BetaSchedule kind, int64_t T) {
  if (T < 2) throw std::runtime_error("timesteps must be at least 2, got " + std::to_string(T));
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  if (kind == BetaSchedule::Linear) {
    // DDPM §4: β_1 = 1e-4 to β_T = 0.02, linearly, for any T. (improved-diffusion rescales the endpoints by
    // 1000/T; we keep the paper's endpoints so a config means the same schedule everywhere.)
    return torch::linspace(1e-4, 0.02, T, f64);
  }
  // Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), s = 0.008;
  // β_t = 1 − ᾱ(t)/ᾱ(t−1), clipped at 0.999.
  const double s = 0.008;
  auto f = [&](double t) {
    const double v = std::cos((t / static_cast<double>(T) + s) / (1.0 + s) * M_PI / 2.0);
    return v * v;
  };
  auto betas = torch::empty({T}, f64);
  auto* b = betas.data_ptr<double>();
  for (int64_t i = 0; i < T; ++i) b[i] = std::min(1.0 - f(i + 1) / f(i), 0.999);
  return betas;
}

torch::Tensor extract(const torch::Tensor& coef, const torch::Tensor& t, const torch::Tensor& like) {
  auto v = coef.index_select(0, t.to(torch::kCPU, torch::kLong));  // [B]
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = t.size(0);
  return v.to(like.device(), like.scalar_type()).view(shape);  // [B, 1, 1, 1]
}

Schedule::Schedule(BetaSchedule kind_, int64_t T_) : kind(kind_), T(T_) {
  betas = make_betas(kind, T);
  alphas = 1.0 - betas;
  alphas_cumprod = torch::cumprod(alphas, 0);
  alphas_cumprod_prev = torch::cat({torch::ones({1}, betas.options()), alphas_cumprod.slice(0, 0, T - 1)});
  sqrt_alphas_cumprod = alphas_cumprod.sqrt();
  sqrt_one_minus_alphas_cumprod = (1.0 - alphas_cumprod).sqrt();
  sqrt_recip_alphas_cumprod = alphas_cumprod.rsqrt();
  sqrt_recipm1_alphas_cumprod = (1.0 / alphas_cumprod - 1.0).sqrt();
  posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod);
  posterior_log_variance_clipped =
      torch::cat({posterior_variance.slice(0, 1, 2), posterior_variance.slice(0, 1, T)}).log();
  posterior_mean_coef1 = betas * alphas_cumprod_prev.sqrt() / (1.0 - alphas_cumprod);
  posterior_mean_coef2 = (1.0 - alphas_cumprod_prev) * alphas.sqrt() / (1.0 - alphas_cumprod);
  log_sigmas = (0.5 * ((1.0 - alphas_cumprod) / alphas_cumprod).log()).contiguous();
}

double Schedule::sigma(int64_t t) const {
  if (t < 0 || t >= T) throw std::out_of_range("timestep " + std::to_string(t) + " outside [0, " + std::to_string(T) + ")");
  return std::exp(log_sigmas.data_ptr<double>()[t]);
}

double Schedule::t_for_sigma(double sigma) const {
  const auto* ls = log_sigmas.data_ptr<double>();
  const double l = std::log(sigma);
  if (!(l > ls[0])) return 0.0;
  if (l >= ls[T - 1]) return static_cast<double>(T - 1);
  const int64_t i = std::upper_bound(ls, ls + T, l) - ls - 1;  // ls[i] <= l < ls[i+1]
  return static_cast<double>(i) + (l - ls[i]) / (ls[i + 1] - ls[i]);
}

double Schedule::alpha_bar_at(double t) const {
  if (!(t >= 0.0 && t <= static_cast<double>(T - 1)))
    throw std::out_of_range("fractional timestep " + std::to_string(t) + " outside [0, " + std::to_string(T - 1) + "]");
  const auto* ls = log_sigmas.data_ptr<double>();
  const int64_t i = std::min<int64_t>(static_cast<int64_t>(t), T - 2);
  const double w = t - static_cast<double>(i);
  const double s = std::exp((1.0 - w) * ls[i] + w * ls[i + 1]);
  return 1.0 / (1.0 + s * s);
}

torch::Tensor Schedule::alpha_bar(const torch::Tensor& t, const torch::Tensor& like) const {
  if (!t.is_floating_point()) return extract(alphas_cumprod, t, like);
  auto tc = t.to(torch::kCPU, torch::kFloat64).contiguous();  // [B]
  auto out = torch::empty({t.size(0)}, tc.options());
  for (int64_t i = 0; i < t.size(0); ++i) out.data_ptr<double>()[i] = alpha_bar_at(tc.data_ptr<double>()[i]);
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = t.size(0);
  return out.to(like.device(), like.scalar_type()).view(shape);  // [B, 1, 1, 1]
}

torch::Tensor Schedule::q_sample(const torch::Tensor& x0, const torch::Tensor& t, const torch::Tensor& eps) const {
  return extract(sqrt_alphas_cumprod, t, x0) * x0 + extract(sqrt_one_minus_alphas_cumprod, t, x0) * eps;
}

torch::Tensor Schedule::predict_x0_from_eps(const torch::Tensor& x_t, const torch::Tensor& t,
                                            const torch::Tensor& eps) const {
  return extract(sqrt_recip_alphas_cumprod, t, x_t) * x_t - extract(sqrt_recipm1_alphas_cumprod, t, x_t) * eps;
}

torch::Tensor Schedule::q_posterior_mean(const torch::Tensor& x0, const torch::Tensor& x_t,
                                         const torch::Tensor& t) const {
  return extract(posterior_mean_coef1, t, x_t) * x0 + extract(posterior_mean_coef2, t, x_t) * x_t;
}

}  // namespace ddpm
