// test_fast_samplers.cpp — DDIM, DPM-Solver++, Euler, Heun, DDIM inversion, prediction targets and classifier-free
// guidance against closed-form oracles (no trained weights). Computed in float64 where orders are measured, so
// rounding does not hide the discretisation error.
#include "ddpm/diffusion/prediction.h"
#include "ddpm/samplers/ddim.h"
#include "ddpm/samplers/ddpm_sampler.h"
#include "ddpm/samplers/dpm_solver.h"
#include "ddpm/samplers/guidance.h"
#include "ddpm/samplers/karras.h"
#include "ddpm/samplers/registry.h"
#include "ddpm/util/runtime.h"
#include "oracles.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>

using namespace ddpm;
using namespace ddpm::test;

namespace {
SamplerOptions named(const std::string& name, int64_t steps, bool clip = false) {
  SamplerOptions o;
  o.name = name;
  o.steps = steps;
  o.clip_x0 = clip;
  o.variance = VarianceType::FixedSmall;
  return o;
}
const std::vector<std::string> kDeterministic = {"ddim", "dpm++2m", "dpm++3m", "euler", "heun"};
// The score-SDE samplers have their own oracle tests (float64, step counts and image sizes of their own):
// tests/test_sde_samplers.cpp.
bool is_sde(const std::string& name) { return name == "edm-sde" || name == "vp-sde" || name == "pc"; }
}  // namespace

TEST(Spacing, Values) {
  EXPECT_EQ(timesteps_for(Spacing::Uniform, 1000, 4), (std::vector<int64_t>{0, 333, 666, 999}));
  EXPECT_EQ(timesteps_for(Spacing::Trailing, 1000, 4), (std::vector<int64_t>{249, 499, 749, 999}));
  EXPECT_EQ(timesteps_for(Spacing::Trailing, 1000, 10).front(), 99);
  auto q = timesteps_for(Spacing::Quadratic, 1000, 10);  // ⌊(i·√800/9)²⌋
  EXPECT_EQ(q, (std::vector<int64_t>{0, 9, 39, 88, 158, 246, 355, 483, 632, 800}));
  for (auto sp : {Spacing::Uniform, Spacing::Trailing, Spacing::Quadratic})
    for (int64_t n : {1, 7, 100, 500}) {
      auto ts = timesteps_for(sp, 1000, n);
      ASSERT_EQ(static_cast<int64_t>(ts.size()), n) << to_string(sp);
      for (size_t i = 1; i < ts.size(); ++i) ASSERT_LT(ts[i - 1], ts[i]) << to_string(sp) << " n=" << n;
      EXPECT_GE(ts.front(), 0);
      EXPECT_LE(ts.back(), 999);
    }
  EXPECT_THROW(timesteps_for(Spacing::Trailing, 1000, 0), std::runtime_error);
  EXPECT_THROW(parse_spacing("linear"), std::runtime_error);
  // Fractional grids: from 0 to T−1, strictly increasing; logsnr is uniform in λ = −log σ.
  Schedule s(BetaSchedule::Linear, 1000);
  for (auto sp : {Spacing::LogSNR, Spacing::Karras})
    for (int64_t n : {2, 10, 200}) {
      auto g = time_grid(sp, s, n);
      ASSERT_EQ(static_cast<int64_t>(g.size()), n);
      EXPECT_EQ(g.front(), 0.0);
      EXPECT_EQ(g.back(), 999.0);
      for (size_t i = 1; i < g.size(); ++i) ASSERT_LT(g[i - 1], g[i]) << to_string(sp) << " n=" << n;
    }
  auto g = time_grid(Spacing::LogSNR, s, 5);
  std::vector<double> lam;
  for (double t : g) lam.push_back(0.5 * std::log(alpha_bar_of(s, t) / (1 - alpha_bar_of(s, t))));
  for (size_t i = 2; i < lam.size(); ++i) EXPECT_NEAR(lam[i] - lam[i - 1], lam[1] - lam[0], 1e-9);
  EXPECT_EQ(time_grid(Spacing::Trailing, s, 4), (std::vector<double>{249, 499, 749, 999}));
  EXPECT_EQ(alpha_bar_of(s, 17.0), s.alphas_cumprod[17].item<double>());
}

TEST(Karras, SigmaScheduleAndContinuousTime) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto sig = karras_sigmas(s, 10);
  ASSERT_EQ(sig.size(), 11u);
  EXPECT_NEAR(sig.front(), s.sigma(999), 1e-9 * sig.front());
  EXPECT_NEAR(sig[9], s.sigma(0), 1e-12);
  EXPECT_EQ(sig.back(), 0.0);
  for (size_t i = 1; i < sig.size(); ++i) EXPECT_LT(sig[i], sig[i - 1]);
  // Continuous time agrees with the table at the integers and is monotone between them.
  for (int64_t t : {0, 1, 17, 500, 998, 999}) {
    EXPECT_NEAR(s.t_for_sigma(s.sigma(t)), static_cast<double>(t), 1e-9);
    EXPECT_NEAR(s.alpha_bar_at(static_cast<double>(t)), s.alphas_cumprod[t].item<double>(), 1e-12);
  }
  EXPECT_GT(s.alpha_bar_at(10.25), s.alpha_bar_at(10.75));
  const double sg = 0.5 * (s.sigma(10) + s.sigma(11));
  EXPECT_NEAR(1.0 / s.alpha_bar_at(s.t_for_sigma(sg)) - 1.0, sg * sg, 1e-12);
}

TEST(Samplers, CountTheNFETheyReport) {
  Schedule s(BetaSchedule::Linear, 1000);
  for (const auto& name : sampler_names()) {
    for (int64_t steps : {1, 2, 7}) {
      int64_t calls = 0;
      auto oracle = gaussian_eps(s, 0.5);
      EpsModel counted = [&](const torch::Tensor& x, const torch::Tensor& t) {
        ++calls;
        return oracle(x, t);
      };
      auto o = named(name, steps);
      auto gen = make_generator(0);
      run_sampler(s, counted, torch::randn({2, 1, 2, 2}, gen), generator_noise(gen), o);
      EXPECT_EQ(calls, sampler_nfe(o, s.T)) << name << " steps=" << steps;
    }
  }
  EXPECT_EQ(sampler_nfe(named("heun", 18), 1000), 35);
  EXPECT_EQ(sampler_steps(named("ddpm", 0), 1000), 1000);
  EXPECT_THROW(check_sampler_options(named("ddim", 1001), 1000), std::runtime_error);
  EXPECT_THROW(check_sampler_options(named("plms", 10), 1000), std::runtime_error);
  auto bad_eta = named("dpm++2m", 10);
  bad_eta.eta = 0.5;
  EXPECT_THROW(check_sampler_options(bad_eta, 1000), std::runtime_error);
}

TEST(Samplers, SingleImageOracleReturnsTheImage) {
  // With the exact ε of a one-image dataset every x̂_0 is the image, and every sampler ends on x̂_0.
  Schedule s(BetaSchedule::Linear, 1000);
  auto gen0 = make_generator(0);
  auto x_star = torch::rand({1, 1, 8, 8}, gen0) * 1.8 - 0.9;
  auto model = single_image_eps(s, x_star);
  for (const auto& name : sampler_names())
    for (int64_t steps : {1, 5, 20, 100}) {
      if (is_sde(name)) continue;
      for (bool clip : {false, true}) {
        auto gen = make_generator(1);
        auto o = named(name, steps, clip);
        if (name == "ddim") o.eta = clip ? 1.0 : 0.0;  // both the deterministic and the stochastic DDIM
        auto x0 = run_sampler(s, model, torch::randn({4, 1, 8, 8}, gen), generator_noise(gen), o);
        EXPECT_LT((x0 - x_star).abs().max().item<double>(), 1e-4) << name << " steps=" << steps << " clip=" << clip;
      }
    }
}

TEST(Samplers, GaussianOracleHasTheDataStd) {
  // Data N(0, s²) with its exact ε: every sampler's output has std ≈ s (no clipping: the data is unbounded).
  Schedule s(BetaSchedule::Linear, 1000);
  for (const auto& name : sampler_names()) {
    if (is_sde(name)) continue;
    for (double sd : {0.5, 1.0}) {
      auto gen = make_generator(2);
      // First-order samplers need more steps for a 3% match: at 50 steps DDIM/Euler are ~6% short on this data
      // (the order test below shows why: error ∝ 1/steps).
      auto o = named(name, name == "ddpm" ? 250 : (name == "ddim" || name == "euler") ? 200 : 50);
      auto x0 = run_sampler(s, gaussian_eps(s, sd), torch::randn({4000, 1, 2, 2}, gen), generator_noise(gen), o);
      EXPECT_NEAR(x0.std().item<double>(), sd, 0.03 * sd) << name << " sd=" << sd;
      EXPECT_NEAR(x0.mean().item<double>(), 0.0, 0.03) << name << " sd=" << sd;
    }
  }
}

TEST(Samplers, ConvergeAtTheirOrderOnTheGaussianODE) {
  // The probability-flow ODE of N(0, s²) data has a closed-form solution (oracles.h): measure each deterministic
  // sampler's error at S, 2S, 4S, 8S steps; the order is log2 of the error ratio when the steps double.
  Schedule s(BetaSchedule::Linear, 1000);
  const double sd = 0.5;
  auto gen = make_generator(3);
  auto x_T = torch::randn({64, 1, 2, 2}, gen, torch::kFloat64);
  const auto exact = gaussian_ode_x0(s, x_T, sd);
  // Each sampler with its default spacing (DDIM uniform, DPM-Solver++ logsnr, Euler/Heun karras).
  std::map<std::string, std::pair<double, double>> expected = {  // [min, max] order at the finest doubling
      {"ddim", {0.8, 1.3}}, {"euler", {0.8, 1.3}}, {"heun", {1.7, 2.6}}, {"dpm++2m", {1.7, 2.6}}, {"dpm++3m", {2.2, 3.6}}};
  for (const auto& name : kDeterministic) {
    std::vector<double> err;
    const std::vector<int64_t> steps = {10, 20, 40, 80};
    for (int64_t n : steps) {
      auto x0 = run_sampler(s, gaussian_eps(s, sd), x_T, generator_noise(gen), named(name, n));
      err.push_back((x0 - exact).abs().max().item<double>());
    }
    std::printf("[ order    ] %-8s", name.c_str());
    for (size_t i = 0; i < err.size(); ++i) std::printf("  err(%3lld)=%.3e", static_cast<long long>(steps[i]), err[i]);
    for (size_t i = 1; i < err.size(); ++i) std::printf("  p=%.2f", std::log2(err[i - 1] / err[i]));
    std::printf("\n");
    const double p = std::log2(err[err.size() - 2] / err.back());
    EXPECT_GE(p, expected[name].first) << name;
    EXPECT_LE(p, expected[name].second) << name;
  }
  // Why DPM-Solver++ defaults to logsnr spacing: at 10 NFE, uniform t is several times worse here.
  auto o = named("dpm++2m", 10);
  const double err_logsnr = (run_sampler(s, gaussian_eps(s, sd), x_T, generator_noise(gen), o) - exact).abs().max().item<double>();
  o.spacing = Spacing::Uniform;
  const double err_uniform = (run_sampler(s, gaussian_eps(s, sd), x_T, generator_noise(gen), o) - exact).abs().max().item<double>();
  std::printf("[ order    ] dpm++2m at 10 NFE: err %.3e with logsnr spacing, %.3e with uniform\n", err_logsnr, err_uniform);
  EXPECT_LT(err_logsnr * 4, err_uniform);
}

TEST(DDIM, EtaOneOverAllStepsIsDDPMWithFixedSmallVariance) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.6);
  for (int64_t steps : {1000, 50}) {
    for (bool clip : {false, true}) {
      auto x_T = torch::randn({8, 1, 3, 3}, make_generator(4), torch::kFloat64);
      auto g1 = make_generator(5), g2 = make_generator(5);
      DDPMSamplerOptions p;
      p.steps = steps;
      p.variance = VarianceType::FixedSmall;
      p.clip_x0 = clip;
      DDIMOptions d;
      d.steps = steps;
      d.eta = 1.0;
      d.clip_x0 = clip;
      auto a = ddpm_sample(s, model, x_T, generator_noise(g1), p);
      auto b = ddim_sample(s, model, x_T, generator_noise(g2), d);
      EXPECT_LT((a - b).abs().max().item<double>(), 1e-9) << "steps=" << steps << " clip=" << clip;
    }
  }
}

TEST(DDIM, EtaZeroIsDeterministic) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto x_T = torch::randn({4, 1, 4, 4}, make_generator(6));
  DDIMOptions d;
  d.steps = 25;
  auto a = ddim_sample(s, gaussian_eps(s, 0.5), x_T, generator_noise(make_generator(1)), d);
  auto b = ddim_sample(s, gaussian_eps(s, 0.5), x_T, generator_noise(make_generator(2)), d);
  EXPECT_TRUE(torch::equal(a, b));
  d.eta = 0.5;
  auto c = ddim_sample(s, gaussian_eps(s, 0.5), x_T, generator_noise(make_generator(1)), d);
  auto e = ddim_sample(s, gaussian_eps(s, 0.5), x_T, generator_noise(make_generator(2)), d);
  EXPECT_FALSE(torch::equal(c, e));
}

TEST(DDIM, InversionThenSamplingReconstructs) {
  Schedule s(BetaSchedule::Linear, 1000);
  const double sd = 0.5;
  auto x0 = torch::randn({16, 1, 3, 3}, make_generator(7), torch::kFloat64) * sd;
  std::vector<double> err;
  for (int64_t steps : {50, 200}) {
    auto latent = ddim_invert(s, gaussian_eps(s, sd), x0, steps);
    DDIMOptions d;
    d.steps = steps;
    d.clip_x0 = false;
    auto back = ddim_sample(s, gaussian_eps(s, sd), latent, generator_noise(make_generator(0)), d);
    err.push_back((back - x0).abs().max().item<double>());
    std::printf("[ invert   ] steps=%lld max |x0 - sample(invert(x0))| = %.3e (data std %.1f)\n",
                static_cast<long long>(steps), err.back(), sd);
  }
  // Inversion and sampling are both first order, so the round trip is off by O(1/steps) (measured: 0.17 at 50
  // steps, 0.044 at 200, for data of std 0.5 and |x_0| up to ~1.5).
  EXPECT_LT(err[1], 0.06);
  EXPECT_GT(err[0] / err[1], 3.0);  // about 4× better for 4× the steps
  // With a one-image dataset inversion is exact.
  auto x_star = torch::rand({1, 1, 4, 4}, make_generator(8), torch::kFloat64) - 0.5;
  auto latent = ddim_invert(s, single_image_eps(s, x_star), x_star, 10);
  DDIMOptions d;
  d.steps = 10;
  auto back = ddim_sample(s, single_image_eps(s, x_star), latent, generator_noise(make_generator(0)), d);
  EXPECT_LT((back - x_star).abs().max().item<double>(), 1e-9);
}

TEST(Prediction, TargetsAndAdaptersAreConsistent) {
  auto gen = make_generator(9);
  auto x0 = torch::randn({5, 1, 3, 3}, gen, torch::kFloat64), eps = torch::randn({5, 1, 3, 3}, gen, torch::kFloat64);
  auto a = torch::tensor({0.9999, 0.9, 0.5, 0.1, 4e-5}, torch::kFloat64).view({5, 1, 1, 1});
  auto x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps;
  for (auto p : {Prediction::Eps, Prediction::X0, Prediction::V}) {
    auto target = training_target(p, x0, eps, a);
    EXPECT_LT((to_eps(p, target, x_t, a) - eps).abs().max().item<double>(), 1e-6) << to_string(p);
    EXPECT_LT((to_x0(p, target, x_t, a) - x0).abs().max().item<double>(), 1e-6) << to_string(p);
    EXPECT_EQ(parse_prediction(to_string(p)), p);
  }
  // v by its definition (Salimans & Ho 2022): v = √ᾱ ε − √(1−ᾱ) x_0.
  EXPECT_TRUE(torch::allclose(training_target(Prediction::V, x0, eps, a), a.sqrt() * eps - (1 - a).sqrt() * x0));
  EXPECT_THROW(parse_prediction("score"), std::runtime_error);
}

TEST(Prediction, XZeroAndVModelsSampleLikeTheEpsModel) {
  // The exact x_0- and v-models of Gaussian data, through the adapter, give the ε-model's samples.
  Schedule s(BetaSchedule::Linear, 1000);
  const double sd = 0.7;
  auto raw_x0 = gaussian_x0(s, sd), raw_v = gaussian_v(s, sd);
  EpsModel from_x0 = [&](const torch::Tensor& x, const torch::Tensor& t) {
    return to_eps(Prediction::X0, raw_x0(x, t), x, s.alpha_bar(t, x));
  };
  EpsModel from_v = [&](const torch::Tensor& x, const torch::Tensor& t) {
    return to_eps(Prediction::V, raw_v(x, t), x, s.alpha_bar(t, x));
  };
  auto x_T = torch::randn({8, 1, 3, 3}, make_generator(10), torch::kFloat64);
  for (const auto& name : sampler_names()) {
    auto o = named(name, 30);
    auto ref = run_sampler(s, gaussian_eps(s, sd), x_T, generator_noise(make_generator(11)), o);
    auto a = run_sampler(s, from_x0, x_T, generator_noise(make_generator(11)), o);
    auto b = run_sampler(s, from_v, x_T, generator_noise(make_generator(11)), o);
    EXPECT_LT((a - ref).abs().max().item<double>(), 1e-8) << name << " x0";
    EXPECT_LT((b - ref).abs().max().item<double>(), 1e-8) << name << " v";
  }
}

TEST(Guidance, WeightZeroIsPlainConditionalAndOneBatchedPass) {
  Schedule s(BetaSchedule::Linear, 200);
  auto base = gaussian_eps(s, 0.5);
  int64_t calls = 0, last_batch = 0;
  const int64_t null_label = 3;
  // A toy class-conditional ε: the class shifts the prediction.
  CondEpsModel cond = [&](const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y) {
    ++calls;
    last_batch = x.size(0);
    return base(x, t) + 0.05 * y.to(x.dtype()).view({-1, 1, 1, 1});
  };
  auto labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  auto x_T = torch::randn({4, 1, 2, 2}, make_generator(12), torch::kFloat64);
  EpsModel plain = [&](const torch::Tensor& x, const torch::Tensor& t) { return cond(x, t, labels); };
  for (const auto& name : {std::string("ddpm"), std::string("dpm++2m")}) {
    auto o = named(name, 20);
    auto a = run_sampler(s, plain, x_T, generator_noise(make_generator(13)), o);
    calls = 0;
    auto b = run_sampler(s, classifier_free_guidance(cond, labels, null_label, 0.0), x_T,
                         generator_noise(make_generator(13)), o);
    EXPECT_TRUE(torch::equal(a, b)) << name;
    EXPECT_EQ(calls, 20);
    EXPECT_EQ(last_batch, 4);
  }
  // w > 0: one forward pass of 2B images giving (1+w) ε(c) − w ε(∅).
  const double w = 2.5;
  auto guided = classifier_free_guidance(cond, labels, null_label, w);
  auto x = torch::randn({4, 1, 2, 2}, make_generator(14), torch::kFloat64);
  auto t = torch::full({4}, 50, torch::kLong);
  calls = 0;
  auto e = guided(x, t);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(last_batch, 8);
  auto expect = (1 + w) * cond(x, t, labels) - w * cond(x, t, torch::full({4}, null_label, torch::kLong));
  EXPECT_LT((e - expect).abs().max().item<double>(), 1e-12);
}
