// test_sde_samplers.cpp — the score-SDE samplers (edm-sde, vp-sde, pc) against closed-form oracles (no trained
// weights): NFE counted in a wrapper, the single-image and Gaussian oracles, the weak error against the exact
// Gaussian answer as the steps grow (printed as a measured order), EDM's sampler with no churn ≡ Heun bit for
// bit, PC with the ancestral predictor and no corrector ≡ DDPM, seeds and batch independence.
#include "ddpm/nn/unet.h"
#include "ddpm/samplers/ddpm_sampler.h"
#include "ddpm/samplers/edm_sde.h"
#include "ddpm/samplers/generate.h"
#include "ddpm/samplers/heun.h"
#include "ddpm/samplers/pc.h"
#include "ddpm/samplers/registry.h"
#include "ddpm/samplers/vp_sde.h"
#include "ddpm/util/runtime.h"
#include "oracles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

using namespace ddpm;
using namespace ddpm::test;

namespace {
const std::vector<std::string> kSDE = {"edm-sde", "vp-sde", "pc"};

SamplerOptions named(const std::string& name, int64_t steps, bool clip = false) {
  SamplerOptions o;
  o.name = name;
  o.steps = steps;
  o.clip_x0 = clip;
  return o;
}

// Noise whose draws are the columns 1, 2, 3, … of the n×n Sylvester–Hadamard matrix H_ij = (−1)^popcount(i & j),
// one value per element of [n, 1, 1, 1]: over the n images the inputs (x_T and every noise draw) are exactly
// orthogonal with mean square 1. A sampler that is linear in its inputs with coefficients shared by all images
// (the exact ε of Gaussian data, no clipping, no norm-dependent step) returns x_0 = A x_T + Σ_k C_k z_k, so the
// mean of x_0² over the n images is A² + Σ C_k² = E[x_0²] exactly: the weak error with no Monte Carlo noise.
struct HadamardNoise {
  int64_t n, next = 1;
  torch::Tensor column() {
    TORCH_CHECK(next < n, "HadamardNoise: more than ", n - 1, " draws");
    auto c = torch::empty({n, 1, 1, 1}, torch::kFloat64);
    for (int64_t i = 0; i < n; ++i) c.data_ptr<double>()[i] = (__builtin_popcountll(i & next) % 2) ? -1.0 : 1.0;
    ++next;
    return c;
  }
  NoiseFn fn() {
    return [this](at::IntArrayRef shape) {
      TORCH_CHECK(shape.size() == 4 && shape[0] == n && shape[1] * shape[2] * shape[3] == 1, "HadamardNoise: shape");
      return column();
    };
  }
};

// Least-squares slope of log(err) against log(steps): the measured order p in err ∝ steps^−p.
double fitted_order(const std::vector<int64_t>& steps, const std::vector<double>& err) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double m = static_cast<double>(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const double x = std::log(static_cast<double>(steps[i])), y = std::log(err[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  return -(m * sxy - sx * sy) / (m * sxx - sx * sx);
}

void print_errors(const char* label, const std::vector<int64_t>& steps, const std::vector<double>& err) {
  std::printf("[ weak err ] %-34s", label);
  for (size_t i = 0; i < err.size(); ++i) std::printf("  e(%lld)=%.2e", static_cast<long long>(steps[i]), err[i]);
  std::printf("\n[ order    ] %-34s", label);
  for (size_t i = 1; i < err.size(); ++i)  // local order between neighbouring step counts
    std::printf("  p=%.2f", std::log(err[i - 1] / err[i]) / std::log(double(steps[i]) / double(steps[i - 1])));
  std::printf("  fitted p=%.2f\n", fitted_order(steps, err));
}
}  // namespace

TEST(SDESamplers, RegistryNamesDefaultsAndNFE) {
  const int64_t T = 1000;
  auto names = sampler_names();
  for (const auto& n : kSDE) EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_EQ(sampler_steps(named("edm-sde", 0), T), 18);
  EXPECT_EQ(sampler_nfe(named("edm-sde", 0), T), 35);
  EXPECT_EQ(sampler_spacing(named("edm-sde", 0)), Spacing::Karras);
  EXPECT_EQ(sampler_steps(named("vp-sde", 0), T), T);
  EXPECT_EQ(sampler_nfe(named("vp-sde", 20), T), 20);
  EXPECT_EQ(sampler_spacing(named("vp-sde", 0)), Spacing::Uniform);
  EXPECT_EQ(sampler_steps(named("pc", 0), T), T);
  EXPECT_EQ(sampler_nfe(named("pc", 0), T), 1999);
  EXPECT_EQ(sampler_nfe(named("pc", 10), T), 19);
  auto pc3 = named("pc", 10);
  pc3.corrector_steps = 3;
  EXPECT_EQ(sampler_nfe(pc3, T), 10 + 3 * 9);
  pc3.corrector_steps = 0;
  EXPECT_EQ(sampler_nfe(pc3, T), 10);
  EXPECT_EQ(sampler_spacing(named("pc", 0)), Spacing::Uniform);
  for (const auto& n : {"vp-sde", "pc", "edm-sde"}) EXPECT_TRUE(sampler_uses_noise(named(n, 10))) << n;
  auto no_churn = named("edm-sde", 10);
  no_churn.s_churn = 0;
  EXPECT_FALSE(sampler_uses_noise(no_churn));
  // Defaults: EDM Table 5 (CIFAR-10, VP) and Song et al.'s snr.
  SamplerOptions d;
  EXPECT_EQ(d.s_churn, 30.0);
  EXPECT_EQ(d.s_tmin, 0.01);
  EXPECT_EQ(d.s_tmax, 1.0);
  EXPECT_EQ(d.s_noise, 1.007);
  EXPECT_EQ(d.corrector_steps, 1);
  EXPECT_EQ(d.snr, 0.16);
}

TEST(SDESamplers, RejectBadOptions) {
  const int64_t T = 1000;
  auto bad = [&](auto set) {
    auto o = named("edm-sde", 10);
    set(o);
    EXPECT_THROW(check_sampler_options(o, T), std::runtime_error);
  };
  bad([](SamplerOptions& o) { o.s_churn = -1; });
  bad([](SamplerOptions& o) { o.s_churn = std::nan(""); });
  bad([](SamplerOptions& o) { o.s_noise = -0.5; });
  bad([](SamplerOptions& o) { o.s_tmin = -1; });
  bad([](SamplerOptions& o) { o.s_tmin = 2, o.s_tmax = 1; });
  bad([](SamplerOptions& o) { o.snr = 0; });
  bad([](SamplerOptions& o) { o.snr = -0.1; });
  bad([](SamplerOptions& o) { o.snr = std::numeric_limits<double>::infinity(); });
  bad([](SamplerOptions& o) { o.corrector_steps = -1; });
  bad([](SamplerOptions& o) { o.name = "pc", o.steps = 1001; });
  auto ok = named("edm-sde", 10);
  ok.s_tmax = std::numeric_limits<double>::infinity();
  ok.s_noise = 0;
  EXPECT_NO_THROW(check_sampler_options(ok, T));
  try {
    auto o = named("edm-sde", 10);
    o.s_churn = -1;
    check_sampler_options(o, T);
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("--s-churn must be >= 0"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_pc_predictor("ancestral"), PCPredictor::Ancestral);
  EXPECT_EQ(parse_pc_predictor(to_string(PCPredictor::ReverseDiffusion)), PCPredictor::ReverseDiffusion);
  EXPECT_THROW(parse_pc_predictor("langevin"), std::runtime_error);
}

TEST(SDESamplers, CountTheNFETheyReport) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto oracle = gaussian_eps(s, 0.5);
  for (const auto& name : kSDE)
    for (int64_t steps : {1, 2, 7, 30})
      for (int64_t variant : {0, 1, 2}) {
        auto o = named(name, steps);
        if (name == "pc") o.corrector_steps = variant == 2 ? 3 : variant;  // M = 0, 1, 3
        if (name == "edm-sde" && variant > 0) o.s_tmin = 0, o.s_tmax = variant == 1 ? 1.0 : 1e9;  // churn on
        if (name == "edm-sde" && variant == 0) o.s_churn = 0;
        int64_t calls = 0, draws = 0;
        EpsModel counted = [&](const torch::Tensor& x, const torch::Tensor& t) {
          ++calls;
          return oracle(x, t);
        };
        auto gen = make_generator(0);
        NoiseFn noise = [&](at::IntArrayRef shape) {
          ++draws;
          return torch::randn(shape, gen, torch::kFloat32);
        };
        int64_t last_step = 0, reported_total = 0;
        o.on_step = [&](int64_t i, int64_t total) { last_step = i, reported_total = total; };
        auto x = run_sampler(s, counted, torch::randn({2, 1, 2, 2}, gen), noise, o);
        EXPECT_EQ(calls, sampler_nfe(o, s.T)) << name << " steps=" << steps << " variant=" << variant;
        EXPECT_EQ(last_step, steps) << name;
        EXPECT_EQ(reported_total, steps) << name;
        EXPECT_TRUE(torch::isfinite(x).all().item<bool>()) << name;
        if (name == "vp-sde") EXPECT_EQ(draws, steps - 1);
        if (name == "pc") EXPECT_EQ(draws, (steps - 1) * (1 + o.corrector_steps));
        if (name == "edm-sde" && variant == 0) EXPECT_EQ(draws, 0);
        if (name == "edm-sde" && variant == 2) EXPECT_EQ(draws, steps - 1);  // all but the first, at σ_{T−1}
      }
}

TEST(SDESamplers, SingleImageOracleReturnsTheImage) {
  // With the exact ε of a one-image dataset every x̂_0 is the image, and every sampler ends on x̂_0 — whatever
  // noise it injected on the way. In float64: the SDE samplers reach t = 0 (ᾱ_0 = 1 − 10⁻⁴) far from √ᾱ_0 x*,
  // where the oracle's float32 ᾱ (1 − ᾱ_0 to 6·10⁻⁴ relative) alone would cost ≈ 2·10⁻⁴ in x̂_0.
  Schedule s(BetaSchedule::Linear, 1000);
  auto x_star = torch::rand({1, 1, 8, 8}, make_generator(0), torch::kFloat64) * 1.8 - 0.9;
  auto model = single_image_eps(s, x_star);
  for (const auto& name : kSDE)
    for (int64_t steps : {1, 5, 20, 100})
      for (bool clip : {false, true}) {
        auto gen = make_generator(1);
        auto o = named(name, steps, clip);
        if (name == "edm-sde") o.s_tmax = 1e9;  // churn at every step
        if (name == "pc" && clip) o.corrector_steps = 2;
        auto x0 = run_sampler(s, model, torch::randn({4, 1, 8, 8}, gen, torch::kFloat64), generator_noise(gen), o);
        EXPECT_LT((x0 - x_star).abs().max().item<double>(), 1e-9) << name << " steps=" << steps << " clip=" << clip;
      }
}

TEST(SDESamplers, GaussianOracleHasTheDataStd) {
  // Data N(0, s²) with its exact ε: the output std ≈ s. 65,536 values per run (standard error of the std 0.3 %);
  // tolerance 3 %. Steps: each sampler's weak error (next test) must be well under the tolerance — vp-sde is
  // first order (≈ +1 % std at 250 steps), edm-sde with S_noise = 1 second order here, pc's floor is ≈ +2 % std.
  Schedule s(BetaSchedule::Linear, 1000);
  for (const auto& name : kSDE)
    for (double sd : {0.5, 1.0}) {
      auto gen = make_generator(2);
      auto o = named(name, name == "edm-sde" ? 100 : 250);
      o.s_noise = 1.0;  // the exact-SDE noise (1.007 is meant to offset a real network's over-denoising)
      // pc's snr rule is meant for images: 256 values per image keep ‖z‖/‖score‖ near its mean
      auto x0 = run_sampler(s, gaussian_eps(s, sd), torch::randn({256, 1, 16, 16}, gen), generator_noise(gen), o);
      std::printf("[ gaussian ] %-8s sd=%.1f  std %.4f (%+.2f %%)\n", name.c_str(), sd, x0.std().item<double>(),
                  100 * (x0.std().item<double>() / sd - 1));
      EXPECT_NEAR(x0.std().item<double>(), sd, 0.03 * sd) << name << " sd=" << sd;
      EXPECT_NEAR(x0.mean().item<double>(), 0.0, 0.01) << name << " sd=" << sd;
    }
}

TEST(SDESamplers, WeakErrorFallsWithSteps) {
  // The weak error |E[x_0²] − s²| / s² against the exact answer for N(0, s²) data, at 10 … 160 steps. edm-sde
  // and vp-sde are linear in their noise on this data, so E[x_0²] is computed exactly (HadamardNoise); pc's
  // step size depends on ‖score‖, so it is a Monte Carlo estimate (65,536 values, s.e. of the error ≈ 0.006).
  Schedule s(BetaSchedule::Linear, 1000);
  const double sd = 0.5;
  const std::vector<int64_t> steps = {10, 20, 40, 80, 160};
  auto exact_second_moment_err = [&](SamplerOptions o) {
    HadamardNoise h{512};
    auto x_T = h.column();
    auto x0 = run_sampler(s, gaussian_eps(s, sd), x_T, h.fn(), o);
    return std::abs(x0.pow(2).mean().item<double>() / (sd * sd) - 1.0);
  };
  // vp-sde: Euler–Maruyama, weak order 1.
  std::vector<double> err;
  for (auto n : steps) err.push_back(exact_second_moment_err(named("vp-sde", n)));
  print_errors("vp-sde (exact E[x0^2])", steps, err);
  EXPECT_GT(fitted_order(steps, err), 0.8);
  EXPECT_LT(fitted_order(steps, err), 1.3);
  EXPECT_LT(err.back(), 0.05);
  // The exact-moment trick itself: Monte Carlo agrees with it within its error.
  {
    auto gen = make_generator(5);
    auto x0 = run_sampler(s, gaussian_eps(s, sd), torch::randn({256, 1, 16, 16}, gen, torch::kFloat64),
                          generator_noise(gen), named("vp-sde", 20));
    const double mc = x0.pow(2).mean().item<double>() / (sd * sd) - 1.0;
    EXPECT_NEAR(mc, err[1], 0.03) << "Monte Carlo vs exact second moment";
  }
  // edm-sde with churn at every σ and S_noise = 1 (the consistent sampler: γ = min(30/N, √2 − 1)).
  err.clear();
  for (auto n : steps) {
    auto o = named("edm-sde", n);
    o.s_tmin = 0, o.s_tmax = std::numeric_limits<double>::infinity(), o.s_noise = 1.0;
    err.push_back(exact_second_moment_err(o));
  }
  print_errors("edm-sde churn 30, all sigma", steps, err);
  EXPECT_GT(fitted_order(steps, err), 1.0);
  EXPECT_LT(err.back(), err.front() / 30);
  // ... and with the paper's defaults but S_noise = 1 (churn only for σ in [0.01, 1]).
  err.clear();
  for (auto n : steps) {
    auto o = named("edm-sde", n);
    o.s_noise = 1.0;
    err.push_back(exact_second_moment_err(o));
  }
  print_errors("edm-sde churn 30 in [0.01, 1]", steps, err);
  EXPECT_GT(fitted_order(steps, err), 1.0);
  // With S_noise = 1.007 the extra noise leaves a bias that does not fall with the steps.
  {
    auto o = named("edm-sde", 160);
    std::printf("[ weak err ] edm-sde defaults (S_noise 1.007), 160 steps: %.2e\n", exact_second_moment_err(o));
  }
  // pc (reverse-diffusion predictor, 1 Langevin step at snr 0.16): falls with the steps down to the floor set by
  // the corrector's fixed step size.
  err.clear();
  const std::vector<int64_t> pc_steps = {10, 20, 40, 80, 400};
  for (auto n : pc_steps) {
    auto gen = make_generator(6);
    auto x0 = run_sampler(s, gaussian_eps(s, sd), torch::randn({256, 1, 16, 16}, gen, torch::kFloat64),
                          generator_noise(gen), named("pc", n));
    err.push_back(std::abs(x0.pow(2).mean().item<double>() / (sd * sd) - 1.0));
  }
  print_errors("pc M=1 snr 0.16 (Monte Carlo)", pc_steps, err);
  EXPECT_LT(err[3], err[0] / 4);
  EXPECT_LT(err[4], 0.07);
  EXPECT_GT(err[4], 0.02);  // the floor: unadjusted Langevin's bias at a fixed snr
}

TEST(EDMSDE, NoChurnIsHeunBitForBit) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.5);
  for (auto dtype : {torch::kFloat32, torch::kFloat64})
    for (int64_t steps : {1, 2, 5, 18})
      for (bool clip : {false, true})
        for (auto spacing : {Spacing::Karras, Spacing::LogSNR, Spacing::Uniform}) {
          auto x_T = torch::randn({3, 1, 4, 4}, make_generator(7), dtype) * 1.5;
          KarrasOptions k;
          k.steps = steps;
          k.spacing = spacing;
          k.rho = 5.0;
          k.clip_x0 = clip;
          EDMSDEOptions e;
          static_cast<KarrasOptions&>(e) = k;
          e.s_churn = 0;
          auto a = heun_sample(s, model, x_T, k);
          auto b = edm_sde_sample(s, model, x_T, generator_noise(make_generator(1)), e);
          EXPECT_TRUE(torch::equal(a, b)) << "steps=" << steps << " clip=" << clip << " " << to_string(spacing);
          // Churn switched off by its window instead: no σ_i in [S_tmin, S_tmax].
          e.s_churn = 30, e.s_tmin = 1e6, e.s_tmax = 1e7;
          EXPECT_TRUE(torch::equal(a, edm_sde_sample(s, model, x_T, generator_noise(make_generator(1)), e)));
          // With churn it is another sampler. (Not visible at 2 steps with clipping: one Heun step from σ_{T−1} to
          // σ_0 overshoots so far that every x̂_0 clips to ±1 with or without the churn noise.)
          e.s_tmin = 0, e.s_tmax = 1e7;
          if (steps > 2 || (steps == 2 && !clip))
            EXPECT_FALSE(torch::equal(a, edm_sde_sample(s, model, x_T, generator_noise(make_generator(1)), e)))
                << "steps=" << steps << " clip=" << clip << " " << to_string(spacing) << " " << dtype;
        }
}

TEST(EDMSDE, NoChurnIsHeunBitForBitOnARandomUNet) {
  // The whole path of `ddpm sample` (network, adapter, per-image noise, batching) on a tiny random UNet.
  Config cfg;
  cfg.model = ModelConfig{8, 1, 32, {1}, 1, {}, 0.0};
  torch::manual_seed(3);
  UNet net(cfg.model);
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters())  // give every layer a size (a fresh UNet's branches end at ~0)
      if (p.dim() > 1) p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(p[0].numel())));
  }
  GenerateOptions g;
  g.num = 3;
  g.seed = 5;
  g.sampler.name = "heun";
  g.sampler.steps = 4;
  auto a = generate(net, cfg, g);
  g.sampler.name = "edm-sde";
  g.sampler.s_churn = 0;
  EXPECT_TRUE(torch::equal(a, generate(net, cfg, g)));
  g.sampler.s_churn = 30;
  g.sampler.s_tmax = 1e9;
  EXPECT_FALSE(torch::equal(a, generate(net, cfg, g)));
}

TEST(PC, AncestralPredictorWithoutCorrectorIsDDPM) {
  // The ancestral predictor (x + b s)/√(1 − b) + √b z is DDPM's Algorithm 2 step with σ² = β, written with the
  // score: with M = 0 and the same noise the two samplers agree (float64, with and without clipping).
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.6);
  for (int64_t steps : {1000, 50, 7})
    for (bool clip : {false, true}) {
      auto x_T = torch::randn({8, 1, 3, 3}, make_generator(4), torch::kFloat64) * 1.3;
      DDPMSamplerOptions d;
      d.steps = steps;
      d.variance = VarianceType::FixedLarge;
      d.clip_x0 = clip;
      PCOptions p;
      p.steps = steps;
      p.corrector_steps = 0;
      p.predictor = PCPredictor::Ancestral;
      p.clip_x0 = clip;
      auto a = ddpm_sample(s, model, x_T, generator_noise(make_generator(5)), d);
      auto b = pc_sample(s, model, x_T, generator_noise(make_generator(5)), p);
      EXPECT_LT((a - b).abs().max().item<double>(), 1e-9) << "steps=" << steps << " clip=" << clip;
    }
}

TEST(PC, CorrectorStepSizeFollowsTheSnrRule) {
  // One step (S = 2): predictor from τ_2 = T−1 to τ_1 = 0, one Langevin step at t = 0, then x̂_0. With a model
  // whose score at t = 0 is a known g, the corrector moves x by ε g + √(2ε) z with ε = 2α(r‖z‖/‖g‖)² per image.
  Schedule s(BetaSchedule::Linear, 1000);
  const double r = 0.3;
  auto x_T = torch::randn({2, 1, 4, 4}, make_generator(8), torch::kFloat64);
  std::vector<torch::Tensor> seen;  // the inputs of the model, in order
  EpsModel model = [&](const torch::Tensor& x, const torch::Tensor&) {
    seen.push_back(x.clone());
    return 0.1 * x;
  };
  std::vector<torch::Tensor> draws;
  auto gen = make_generator(9);
  NoiseFn noise = [&](at::IntArrayRef shape) {
    draws.push_back(torch::randn(shape, gen, torch::kFloat32));
    return draws.back();
  };
  PCOptions p;
  p.steps = 2;
  p.snr = r;
  p.clip_x0 = false;
  pc_sample(s, model, x_T, noise, p);
  ASSERT_EQ(seen.size(), 3u);  // predictor at T−1, corrector at 0, x̂_0 at 0
  ASSERT_EQ(draws.size(), 2u);
  const double a0 = s.alphas_cumprod[0].item<double>(), alpha = 1.0 - s.betas[0].item<double>();
  const auto x = seen[1];                                          // after the predictor  [2,1,4,4]
  const auto g = -(0.1 * x) / std::sqrt(1.0 - a0);                 // the score at t = 0
  const auto z = draws[1].to(torch::kFloat64);
  const auto eps = 2 * alpha * (r * z.reshape({2, -1}).norm(2, 1) / g.reshape({2, -1}).norm(2, 1)).pow(2);  // [2]
  const auto expect = x + eps.view({2, 1, 1, 1}) * g + (2 * eps).sqrt().view({2, 1, 1, 1}) * z;
  EXPECT_LT((seen[2] - expect).abs().max().item<double>(), 1e-12);
  // The reverse-diffusion predictor, Algorithm 3 line 3, from T−1 to 0.
  const double aT = s.alphas_cumprod[999].item<double>(), b = 1 - aT / a0;
  const auto pred = (2 - std::sqrt(1 - b)) * x_T + b * (-(0.1 * x_T) / std::sqrt(1 - aT)) +
                    std::sqrt(b) * draws[0].to(torch::kFloat64);
  EXPECT_LT((seen[1] - pred).abs().max().item<double>(), 1e-12);
}

TEST(SDESamplers, SeededAndIndependentOfTheBatch) {
  // Per-image noise: the same seed gives the same images, whether the images run in one batch or several;
  // another seed gives others. (pc's step size is per image, so it holds there too.)
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.5);
  for (const auto& name : kSDE) {
    auto o = named(name, 12, true);
    o.s_tmax = 1e9;
    auto x_T = torch::randn({6, 1, 4, 4}, make_generator(10));
    PerImageNoise n1(3, 6), n2(3, 6), n3(4, 6);
    auto whole = run_sampler(s, model, x_T, n1.slice(0), o);
    auto first = run_sampler(s, model, x_T.slice(0, 0, 2), n2.slice(0), o);
    auto rest = run_sampler(s, model, x_T.slice(0, 2, 6), n2.slice(2), o);
    EXPECT_TRUE(torch::equal(whole, torch::cat({first, rest}))) << name;
    PerImageNoise again(3, 6);
    EXPECT_TRUE(torch::equal(whole, run_sampler(s, model, x_T, again.slice(0), o))) << name;
    EXPECT_FALSE(torch::equal(whole, run_sampler(s, model, x_T, n3.slice(0), o))) << name;
  }
}
