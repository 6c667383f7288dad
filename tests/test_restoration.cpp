// test_restoration.cpp — the restoration methods against closed-form oracles (design notes §7), no trained weights:
// operators' A A† A = A; the single-image oracle (every method returns the image); the exact output law of each
// method on Gaussian data (every method here is affine in its standard-normal inputs for an affine ε-model, so
// running it on basis vectors gives its mean and covariance with no sampling error), compared with the
// closed-form posterior; noiseless DDNM's A x = y; RePaint with one resampling ≡ replacement; interpolation's ends.
#include "ddpm/restoration/ddnm.h"
#include "ddpm/restoration/denoise.h"
#include "ddpm/restoration/ilvr.h"
#include "ddpm/restoration/interpolate.h"
#include "ddpm/restoration/known_region.h"
#include "ddpm/restoration/operators.h"
#include "ddpm/restoration/repaint.h"
#include "ddpm/restoration/replace.h"
#include "ddpm/restoration/sdedit.h"
#include "ddpm/samplers/ddim.h"
#include "ddpm/samplers/ddpm_sampler.h"
#include "ddpm/util/runtime.h"
#include "oracles.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>

using namespace ddpm;
using namespace ddpm::test;

namespace {

constexpr auto kF64 = torch::kFloat64;

// Data x_0 ~ N(μ, Σ) on images of `shape` [C,H,W] flattened to d = C·H·W: the exact ε-model
// ε* = σ_t (ᾱ_t Σ + σ_t² I)⁻¹ (x_t − √ᾱ_t μ) (§7). All images of a call share t (the methods' convention).
EpsModel gaussian_full_eps(const Schedule& s, torch::Tensor mu /*[d]*/, torch::Tensor Sigma /*[d,d]*/) {
  return [&s, mu, Sigma](const torch::Tensor& x, const torch::Tensor& t) {
    const double a = s.alpha_bar(t, x).flatten()[0].item<double>();
    const int64_t B = x.size(0), d = mu.size(0);
    auto M = std::sqrt(1 - a) * torch::inverse(a * Sigma + (1 - a) * torch::eye(d, kF64));  // [d,d] symmetric
    auto xf = x.reshape({B, d}).to(kF64) - std::sqrt(a) * mu;                             // [B,d]
    return xf.matmul(M).reshape(x.sizes()).to(x.scalar_type());
  };
}

torch::Tensor equicorrelated(int64_t d, double sd, double rho) {
  return sd * sd * ((1 - rho) * torch::eye(d, kF64) + rho * torch::ones({d, d}, kF64));  // [d,d]
}

struct Law {
  torch::Tensor mean;  // [d]
  torch::Tensor cov;   // [d,d]
};

// A method as a function of (x_T [B,C,H,W], noise): the output [B,C,H,W]. Its exact law over x_T ~ N(0, I) and
// every draw ~ N(0, I), for an affine method: the mean from all-zero inputs, the covariance J Jᵀ with J's columns
// the responses to each input coordinate set to 1 (one image of the batch per coordinate).
using Method = std::function<torch::Tensor(const torch::Tensor& x_T, const NoiseFn& noise)>;

Law exact_law(std::vector<int64_t> chw, const Method& run) {
  int64_t d = 1;
  for (auto v : chw) d *= v;
  std::vector<int64_t> shape1{1};
  shape1.insert(shape1.end(), chw.begin(), chw.end());
  int64_t calls = 0;
  auto zero_out = run(torch::zeros(shape1, kF64), [&](at::IntArrayRef shape) {
    ++calls;
    return torch::zeros(shape, kF64);
  });
  auto mean = zero_out.reshape({d});
  const int64_t B = d * (1 + calls);
  std::vector<int64_t> shapeB{B};
  shapeB.insert(shapeB.end(), chw.begin(), chw.end());
  auto x_T = torch::zeros({B, d}, kF64);
  x_T.slice(0, 0, d).copy_(torch::eye(d, kF64));
  int64_t call = 0;
  NoiseFn basis = [&](at::IntArrayRef shape) {
    EXPECT_EQ(shape[0], B);
    auto z = torch::zeros({B, d}, kF64);
    ++call;
    z.slice(0, d * call, d * (call + 1)).copy_(torch::eye(d, kF64));
    return z.reshape(shape);
  };
  auto out = run(x_T.reshape(shapeB), basis).reshape({B, d});
  EXPECT_EQ(call, calls) << "the method drew a different number of times on a larger batch";
  auto J = out - mean;  // [B,d]
  return {mean, J.t().matmul(J)};
}

// The exact posterior of x_0 ~ N(μ, Σ) given y = A x_0 + n, n ~ N(0, σ_y² I), A a [m,d] matrix (§7).
Law gaussian_posterior(const torch::Tensor& mu, const torch::Tensor& Sigma, const torch::Tensor& A,
                       const torch::Tensor& y, double sigma_y) {
  auto S = A.matmul(Sigma).matmul(A.t()) + sigma_y * sigma_y * torch::eye(A.size(0), kF64);  // [m,m]
  auto K = Sigma.matmul(A.t()).matmul(torch::inverse(S));                                    // [d,m]
  return {mu + K.matmul(y - A.matmul(mu)), Sigma - K.matmul(A).matmul(Sigma)};
}

// A keep mask as the [m,d] selection matrix of its known pixels.
torch::Tensor selection(const torch::Tensor& keep_flat /*[d]*/) {
  auto idx = keep_flat.nonzero().flatten();
  return torch::eye(keep_flat.size(0), kF64).index_select(0, idx);  // [m,d]
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

}  // namespace

// --- operators ----------------------------------------------------------------------------------------------

TEST(Operators, PseudoInverseSatisfiesAAdaggerAEqualsA) {
  auto gen = make_generator(1);
  auto x = torch::randn({3, 3, 8, 8}, gen).to(kF64);
  auto keep = (torch::rand({1, 1, 8, 8}, gen) > 0.5).to(kF64);
  MaskOperator mask(keep);
  AvgPoolOperator pool2(2), pool4(4);
  IdentityOperator id;
  ChannelMeanOperator cmean(3);
  for (const LinearOperator* op : std::vector<const LinearOperator*>{&mask, &pool2, &pool4, &id, &cmean}) {
    auto Ax = op->apply(x);
    EXPECT_LT(max_abs(op->apply(op->pinv(Ax)) - Ax), 1e-12) << op->name();
  }
  EXPECT_EQ(pool4.apply(x).sizes(), (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_EQ(cmean.apply(x).sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_THROW(AvgPoolOperator(3).apply(x), std::runtime_error);  // 3 does not divide 8
  // Average pooling by hand on one block.
  EXPECT_NEAR(pool2.apply(x)[0][1][2][3].item<double>(), x[0][1].slice(0, 4, 6).slice(1, 6, 8).mean().item<double>(), 1e-12);
}

TEST(Masks, CheckKeepMaskRefusesShapesAndTrivialMasks) {
  auto like = torch::zeros({2, 1, 4, 4});
  auto keep = torch::ones({1, 1, 4, 4});
  keep[0][0][0][0] = 0;
  EXPECT_NO_THROW(check_keep_mask(keep, like, "m"));
  EXPECT_THROW(check_keep_mask(torch::ones({1, 1, 4, 4}), like, "m"), std::runtime_error);   // keeps everything
  EXPECT_THROW(check_keep_mask(torch::zeros({1, 1, 4, 4}), like, "m"), std::runtime_error);  // keeps nothing
  EXPECT_THROW(check_keep_mask(torch::ones({1, 1, 4, 5}), like, "m"), std::runtime_error);   // wrong size
  EXPECT_THROW(check_keep_mask(keep * 0.5, like, "m"), std::runtime_error);                  // not 0/1
}

// --- schedules and cross-checks ----------------------------------------------------------------------------

TEST(RePaint, JumpScheduleOfTheReferenceSetting) {
  // 250 steps, L = 10, R = 10: 250 + 24 jump points × 9 extra visits × 10 levels = 2,410 model calls.
  EXPECT_EQ(repaint_nfe(250, 10, 10), 2410);
  auto lv = repaint_levels(250, 10, 10);
  EXPECT_EQ(lv.front(), 250);
  EXPECT_EQ(lv.back(), 0);
  for (size_t i = 1; i < lv.size(); ++i) {
    ASSERT_EQ(std::abs(lv[i] - lv[i - 1]), 1) << "at " << i;
    ASSERT_GE(lv[i], 0);
    ASSERT_LE(lv[i], 250);
  }
  // R = 1: straight down.
  auto straight = repaint_levels(20, 5, 1);
  ASSERT_EQ(straight.size(), 21u);
  for (int64_t i = 0; i <= 20; ++i) EXPECT_EQ(straight[static_cast<size_t>(i)], 20 - i);
  EXPECT_EQ(repaint_nfe(50, 5, 5), 50 + 9 * 4 * 5);
  EXPECT_THROW(repaint_levels(0, 10, 10), std::runtime_error);
  EXPECT_THROW(repaint_levels(10, 0, 10), std::runtime_error);
  EXPECT_THROW(repaint_levels(10, 10, 0), std::runtime_error);
}

TEST(RePaint, OneResamplingIsBitIdenticalToReplace) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.7);
  auto gen = make_generator(5);
  auto y = torch::rand({3, 1, 6, 6}, gen) * 2 - 1;
  auto keep = torch::ones({1, 1, 6, 6});
  keep.slice(2, 1, 4).slice(3, 2, 5).zero_();
  auto x_T = torch::randn({3, 1, 6, 6}, gen);
  ReplaceOptions ro;
  ro.steps = 40;
  RePaintOptions rp;
  rp.steps = 40;
  rp.resample = 1;
  auto a = replace_inpaint(s, model, x_T, y, keep, generator_noise(make_generator(9)), ro);
  auto b = repaint_inpaint(s, model, x_T, y, keep, generator_noise(make_generator(9)), rp);
  EXPECT_TRUE(torch::equal(a, b));
  rp.resample = 3;  // and with resampling it is a different chain
  auto c = repaint_inpaint(s, model, x_T, y, keep, generator_noise(make_generator(9)), rp);
  EXPECT_FALSE(torch::equal(a, c));
}

// --- single-image oracle -----------------------------------------------------------------------------------

TEST(SingleImageOracle, EveryMethodReturnsTheImage) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto gen = make_generator(2);
  auto x_star = torch::rand({1, 1, 8, 8}, gen) * 1.8 - 0.9;  // inside [−1, 1]: clipping is harmless
  auto model = single_image_eps(s, x_star);
  const int64_t B = 2;
  auto x_T = torch::randn({B, 1, 8, 8}, gen);
  auto truth = x_star.expand({B, 1, 8, 8});
  auto noise = [&] { return generator_noise(make_generator(3)); };
  auto keep = torch::ones({1, 1, 8, 8});
  keep.slice(2, 2, 6).slice(3, 2, 6).zero_();
  auto masked = truth * keep;  // the missing pixels' values are not given
  const double tol = 1e-4;
  ReplaceOptions ro;
  ro.steps = 30;
  EXPECT_LT(max_abs(replace_inpaint(s, model, x_T, masked, keep, noise(), ro) - truth), tol) << "replace";
  RePaintOptions rp;
  rp.steps = 30;
  rp.jump_length = 5;
  rp.resample = 3;
  EXPECT_LT(max_abs(repaint_inpaint(s, model, x_T, masked, keep, noise(), rp) - truth), tol) << "repaint";
  MaskOperator mop(keep);
  AvgPoolOperator pool(4);
  DDNMOptions dn;
  dn.steps = 30;
  EXPECT_LT(max_abs(ddnm_restore(s, model, x_T, mop, mop.apply(truth), noise(), dn) - truth), tol) << "ddnm mask";
  EXPECT_LT(max_abs(ddnm_restore(s, model, x_T, pool, pool.apply(truth), noise(), dn) - truth), tol) << "ddnm pool";
  ILVROptions il;
  il.steps = 30;
  EXPECT_LT(max_abs(ilvr_restore(s, model, x_T, pool, pool.apply(truth), noise(), il) - truth), tol) << "ilvr";
  SDEditOptions se;
  se.strength = 0.6;
  auto guide = (truth + 0.3 * torch::randn({B, 1, 8, 8}, gen)).clamp(-1, 1);
  EXPECT_LT(max_abs(sdedit(s, model, guide, noise(), se) - truth), tol) << "sdedit";
  se.keep = keep;  // with a mask the kept pixels are the guide's, the rest the model's image
  auto edited = sdedit(s, model, guide, noise(), se);
  EXPECT_TRUE(torch::equal(edited * keep, guide * keep)) << "sdedit keeps the kept pixels exactly";
  EXPECT_LT(max_abs((edited - truth) * (1 - keep)), tol) << "sdedit with a mask";
  DenoiseOptions de;
  de.steps = 20;
  auto noisy = truth + 0.2 * torch::randn({B, 1, 8, 8}, gen);
  EXPECT_LT(max_abs(denoise_known_sigma(s, model, noisy, 0.2, noise(), de) - truth), tol) << "denoise";
  // DDNM with a noisy y keeps y's range-space content: A†y + (I − A†A) x*.
  auto y_noisy = pool.apply(truth) + 0.1 * torch::randn({B, 1, 2, 2}, gen);
  auto expect = pool.pinv(y_noisy) + truth - pool.project(truth);
  EXPECT_LT(max_abs(ddnm_restore(s, model, x_T, pool, y_noisy, noise(), dn) - expect), tol) << "ddnm noisy y";
}

TEST(Inpainting, KnownPixelsComeBackExactly) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.5);
  auto gen = make_generator(4);
  auto y = torch::rand({2, 3, 8, 8}, gen) * 2 - 1;
  auto keep = (torch::rand({2, 1, 8, 8}, gen) > 0.5).to(torch::kFloat32);
  auto x_T = torch::randn({2, 3, 8, 8}, gen);
  ReplaceOptions ro;
  ro.steps = 10;
  RePaintOptions rp;
  rp.steps = 10;
  rp.jump_length = 2;
  rp.resample = 2;
  auto kept = keep.expand({2, 3, 8, 8}) > 0.5;
  for (const auto& x : {replace_inpaint(s, model, x_T, y, keep, generator_noise(gen), ro),
                        repaint_inpaint(s, model, x_T, y, keep, generator_noise(gen), rp)})
    EXPECT_TRUE(torch::equal(x.masked_select(kept), y.masked_select(kept)));
}

// --- noiseless DDNM: A x = y -----------------------------------------------------------------------------

TEST(DDNM, NoiselessResultSatisfiesTheObservation) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.6);  // x̂_0 is not the answer: the correction does the work
  auto gen = make_generator(6);
  auto truth = torch::rand({3, 3, 8, 8}, gen) * 2 - 1;
  auto x_T = torch::randn({3, 3, 8, 8}, gen);
  auto keep = (torch::rand({3, 1, 8, 8}, gen) > 0.3).to(torch::kFloat32);
  MaskOperator mop(keep);
  AvgPoolOperator pool(2);
  ChannelMeanOperator cmean(3);
  DDNMOptions o;
  o.steps = 25;
  for (const LinearOperator* op : std::vector<const LinearOperator*>{&mop, &pool, &cmean}) {
    auto y = op->apply(truth);
    auto x = ddnm_restore(s, model, x_T, *op, y, generator_noise(make_generator(7)), o);
    EXPECT_LT(max_abs(op->apply(x) - y), 1e-6) << op->name();  // float32 precision
    EXPECT_GT(max_abs(x - truth), 0.1) << op->name() << ": the null space is the model's, not the truth";
  }
}

TEST(ILVR, LowResolutionOfTheResultIsTheReference) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.6);
  auto gen = make_generator(8);
  auto y = torch::rand({2, 1, 4, 4}, gen) * 2 - 1;
  AvgPoolOperator pool(2);
  ILVROptions o;
  o.steps = 25;
  auto x = ilvr_restore(s, model, torch::randn({2, 1, 8, 8}, gen), pool, y, generator_noise(gen), o);
  EXPECT_LT(max_abs(pool.apply(x) - y), 1e-6);
}

// --- Gaussian oracles: exact output laws against the closed-form posterior ----------------------------------

namespace {
struct GaussianCase {
  Schedule s{BetaSchedule::Linear, 1000};
  std::vector<int64_t> chw{1, 2, 3};
  int64_t d = 6;
  torch::Tensor mu = torch::tensor({0.2, -0.1, 0.0, 0.3, -0.2, 0.1}, kF64);
  torch::Tensor keep = torch::tensor({1.0, 0.0, 1.0, 0.0, 0.0, 1.0}, kF64);  // pixels 0, 2, 5 known
  torch::Tensor y = torch::tensor({0.9, 0.0, 0.7, 0.0, 0.0, -0.5}, kF64);   // the known values (0 elsewhere)
  torch::Tensor keep4() const { return keep.reshape({1, 1, 2, 3}); }
  torch::Tensor batch(const torch::Tensor& v, int64_t B) const { return v.reshape({1, 1, 2, 3}).expand({B, 1, 2, 3}); }
};
}  // namespace

TEST(GaussianOracle, IndependentPixelsDoNotLeakThroughTheMask) {
  // Σ = s² I: whatever y is, the missing pixels must come out as they would with no observation at all. Exactly:
  // their law does not depend on y, and under replacement it is the unconditional DDPM sampler's own law (the
  // same steps and variance); approximately N(μ, s²), up to the sampler's discretisation (fixed-large variance,
  // ≈ +3.5% at 100 steps, tested with the samplers). A method that leaks the known region into the unknown
  // one, or forgets to paste, fails here.
  at::set_num_threads(1);
  GaussianCase g;
  const double sd = 0.5;
  auto Sigma = equicorrelated(g.d, sd, 0.0);
  auto model = gaussian_full_eps(g.s, g.mu, Sigma);
  const auto unknown = (1 - g.keep).nonzero().flatten(), known = g.keep.nonzero().flatten();
  auto y2 = torch::tensor({-0.7, 0.0, 0.95, 0.0, 0.0, 0.4}, kF64);
  auto sub = [](const torch::Tensor& c, const torch::Tensor& idx) { return c.index_select(0, idx).index_select(1, idx); };
  using Inpaint = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const NoiseFn&)>;
  std::map<std::string, Inpaint> methods;
  methods["replace"] = [&](const torch::Tensor& x_T, const torch::Tensor& y, const NoiseFn& nz) {
    ReplaceOptions o;
    o.steps = 100;
    o.clip_x0 = false;
    o.variance = VarianceType::FixedLarge;
    return replace_inpaint(g.s, model, x_T, g.batch(y, x_T.size(0)), g.keep4(), nz, o);
  };
  methods["repaint"] = [&](const torch::Tensor& x_T, const torch::Tensor& y, const NoiseFn& nz) {
    RePaintOptions o;
    o.steps = 50;
    o.jump_length = 5;
    o.resample = 3;
    o.clip_x0 = false;
    o.variance = VarianceType::FixedLarge;
    return repaint_inpaint(g.s, model, x_T, g.batch(y, x_T.size(0)), g.keep4(), nz, o);
  };
  methods["ddnm"] = [&](const torch::Tensor& x_T, const torch::Tensor& y, const NoiseFn& nz) {
    DDNMOptions o;
    o.steps = 100;
    o.clip_x0 = false;
    MaskOperator op(g.keep4());
    return ddnm_restore(g.s, model, x_T, op, g.batch(y, x_T.size(0)), nz, o);
  };
  for (const auto& [name, run] : methods) {
    auto law = exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) { return run(x_T, g.y, nz); });
    auto law2 = exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) { return run(x_T, y2, nz); });
    EXPECT_LT(max_abs(law.mean.index_select(0, unknown) - law2.mean.index_select(0, unknown)), 1e-12) << name << ": y leaks";
    EXPECT_LT(max_abs(sub(law.cov, unknown) - sub(law2.cov, unknown)), 1e-12) << name << ": y leaks";
    EXPECT_LT(max_abs(law.mean.index_select(0, known) - g.y.index_select(0, known)), 1e-12) << name;
    EXPECT_LT(max_abs(sub(law.cov, known)), 1e-20) << name << ": known pixels are exact";
    // μ up to the prior mismatch of x_T ~ N(0, I) (the true x_T has mean √ᾱ_{T−1} μ)
    EXPECT_LT(max_abs(law.mean.index_select(0, unknown) - g.mu.index_select(0, unknown)), 1e-4) << name;
    auto cu = sub(law.cov, unknown);
    EXPECT_LT(max_abs(cu - torch::diag(cu.diagonal())), 1e-12) << name << ": independent pixels stay independent";
    std::cout << name << ": variance of a missing pixel / s² = " << cu[0][0].item<double>() / (sd * sd) << "\n";
    if (name != "ddnm") EXPECT_LT(max_abs(cu.diagonal() / (sd * sd) - 1), 0.05) << name;
    if (name == "replace") {  // exactly the unconditional sampler's law
      auto plain = exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) {
        DDPMSamplerOptions o;
        o.steps = 100;
        o.clip_x0 = false;
        return ddpm_sample(g.s, model, x_T, nz, o);
      });
      EXPECT_LT(max_abs(cu - sub(plain.cov, unknown)), 1e-12);
      EXPECT_LT(max_abs((law.mean - plain.mean).index_select(0, unknown)), 1e-12);
    }
  }
}

TEST(GaussianOracle, DDNMUnderDispersesByDesign) {
  // DDNM's step (the official code's η = 0.85) re-draws most of x_{t−1} around x̂_0 each step, so it loses part
  // of the posterior variance even where nothing is observed: on independent pixels the missing pixels' variance
  // is 0.70 s² at 100 steps and does not converge to s² with more steps (0.73 at 250). η = 0 (deterministic
  // DDIM-like steps) is DDIM's probability-flow Euler step and keeps the variance up to its discretisation
  // (0.977 at 250 steps).
  at::set_num_threads(1);
  GaussianCase g;
  const double sd = 0.5;
  auto model = gaussian_full_eps(g.s, g.mu, equicorrelated(g.d, sd, 0.0));
  auto var_of = [&](double eta, int64_t steps) {
    auto law = exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) {
      DDNMOptions o;
      o.steps = steps;
      o.eta = eta;
      o.clip_x0 = false;
      MaskOperator op(g.keep4());
      return ddnm_restore(g.s, model, x_T, op, g.batch(g.y, x_T.size(0)), nz, o);
    });
    return law.cov[1][1].item<double>() / (sd * sd);
  };
  const double v85 = var_of(0.85, 100), v85b = var_of(0.85, 250), v0 = var_of(0.0, 250);
  std::cout << "DDNM missing-pixel variance / s²: η=0.85 100 steps " << v85 << ", 250 steps " << v85b << "; η=0 250 steps " << v0 << "\n";
  EXPECT_NEAR(v85, 0.70, 0.03);
  EXPECT_NEAR(v85b, 0.73, 0.03);
  EXPECT_NEAR(v0, 1.0, 0.03);
}

TEST(GaussianOracle, EquicorrelatedInpaintingApproachesThePosterior) {
  // Σ = s²((1−ρ)I + ρ11ᵀ): each missing pixel has posterior mean μ + ρ/(1−ρ+kρ)·Σ(y_i − μ_i) and variance
  // s²(1 − kρ²/(1−ρ+kρ)) (k known pixels; the general formula is checked against it). Replacement under-uses the
  // known region (the "harmonisation" problem RePaint §4 names): its mean misses the posterior's by ≈ 0.07 and
  // does not converge with steps. RePaint's resampling moves it to the posterior; DDNM's projection of x̂_0 too.
  at::set_num_threads(1);
  GaussianCase g;
  const double sd = 0.5, rho = 0.8;
  auto Sigma = equicorrelated(g.d, sd, rho);
  auto model = gaussian_full_eps(g.s, g.mu, Sigma);
  auto A = selection(g.keep);
  auto post = gaussian_posterior(g.mu, Sigma, A, A.matmul(g.y), 0.0);
  const auto unknown = (1 - g.keep).nonzero().flatten();
  {  // the closed form of §7 (zero mean)
    const double k = 3;
    auto yk = A.matmul(g.y);
    auto p0 = gaussian_posterior(torch::zeros({g.d}, kF64), Sigma, A, yk, 0.0);
    EXPECT_NEAR(p0.mean[1].item<double>(), rho / (1 - rho + k * rho) * yk.sum().item<double>(), 1e-12);
    EXPECT_NEAR(p0.cov[1][1].item<double>(), sd * sd * (1 - k * rho * rho / (1 - rho + k * rho)), 1e-12);
  }
  auto err = [&](const Law& law) {
    auto dm = (law.mean - post.mean).index_select(0, unknown).abs().max().item<double>();
    auto dv = (law.cov - post.cov).index_select(0, unknown).index_select(1, unknown).abs().max().item<double>();
    return std::make_pair(dm, dv);
  };
  auto inpaint_law = [&](const std::string& method, int64_t steps) {
    return exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) {
      auto y = g.batch(g.y, x_T.size(0));
      if (method == "replace") {
        ReplaceOptions o;
        o.steps = steps;
        o.clip_x0 = false;
        o.variance = VarianceType::FixedLarge;
        return replace_inpaint(g.s, model, x_T, y, g.keep4(), nz, o);
      }
      if (method == "repaint") {
        RePaintOptions o;
        o.steps = steps;
        o.jump_length = 10;
        o.resample = 10;
        o.clip_x0 = false;
        o.variance = VarianceType::FixedLarge;
        return repaint_inpaint(g.s, model, x_T, y, g.keep4(), nz, o);
      }
      DDNMOptions o;
      o.steps = steps;
      o.clip_x0 = false;
      MaskOperator op(g.keep4());
      return ddnm_restore(g.s, model, x_T, op, y, nz, o);
    });
  };
  const auto [r1m, r1v] = err(inpaint_law("replace", 100));
  const auto [r2m, r2v] = err(inpaint_law("replace", 250));
  const auto [pm, pv] = err(inpaint_law("repaint", 100));
  const auto [d1m, d1v] = err(inpaint_law("ddnm", 100));
  const auto [d2m, d2v] = err(inpaint_law("ddnm", 250));
  std::cout << "posterior of a missing pixel: mean " << post.mean[1].item<double>() << ", variance "
            << post.cov[1][1].item<double>() << "\nmax |mean error|, |covariance error|: replace 100 steps " << r1m
            << ", " << r1v << "; 250 steps " << r2m << ", " << r2v << "; repaint 100/10/10 " << pm << ", " << pv
            << "; ddnm 100 steps " << d1m << ", " << d1v << "; 250 steps " << d2m << ", " << d2v << "\n";
  EXPECT_GT(r2m, 0.05) << "replacement's bias is a property of the method (if this fails, the test lost its teeth)";
  EXPECT_LT(pm, 0.3 * r1m) << "resampling moves the mean towards the posterior";
  EXPECT_LT(pm, 0.025);
  EXPECT_LT(pv, 0.02);
  EXPECT_LT(pv, r1v);
  EXPECT_LT(d2m, 0.6 * d1m) << "DDNM's mean converges with steps";
  EXPECT_LT(d2m, 0.01);
}

TEST(GaussianOracle, DenoisingMeanIsTweedies) {
  // For y = x_0 + σ′n with σ′ = σ_{t*}/√ᾱ_{t*} exactly, the chain from t* samples p(x_0 | y): its mean is
  // E[x_0 | y] = μ + Σ(Σ + σ′²I)⁻¹(y − μ) exactly (every reverse step's mean is exact for Gaussian data), its
  // covariance the posterior's up to the discretisation.
  GaussianCase g;
  const double sd = 0.5;
  for (double rho : {0.0, 0.6}) {
    auto Sigma = equicorrelated(g.d, sd, rho);
    auto model = gaussian_full_eps(g.s, g.mu, Sigma);
    const int64_t t_star = 150;
    const double ab = g.s.alphas_cumprod.data_ptr<double>()[t_star];
    const double sig = std::sqrt((1 - ab) / ab);
    ASSERT_EQ(denoise_start(g.s, sig * (1 - 1e-12)), t_star);
    auto y = torch::tensor({0.8, -0.6, 0.1, 0.5, -0.9, 0.2}, kF64);
    auto post = gaussian_posterior(g.mu, Sigma, torch::eye(g.d, kF64), y, sig);
    auto law = exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) {
      DenoiseOptions o;
      o.steps = t_star + 1;
      o.clip_x0 = false;
      o.variance = VarianceType::FixedLarge;  // the closer of the two variances to the exact reverse step here
      return denoise_known_sigma(g.s, model, g.batch(y, x_T.size(0)), sig * (1 - 1e-12), nz, o);
    });
    EXPECT_LT(max_abs(law.mean - post.mean), 1e-6) << "rho=" << rho;
    EXPECT_LT(max_abs(law.cov - post.cov), 0.01 * sd * sd) << "rho=" << rho;
  }
  EXPECT_THROW(denoise_start(g.s, 0.0), std::runtime_error);
  EXPECT_THROW(denoise_start(g.s, 1e3), std::runtime_error);  // noisier than σ_{T−1}/√ᾱ_{T−1} ≈ 156
}

TEST(GaussianOracle, SDEditMeanAndVariance) {
  // From x_guide, strength t_0/T: mean μ + (a²s²/v)(x_guide − μ), variance s²σ²/v + (a s²/v)² σ², v = a²s² + σ²
  // (a = √ᾱ_{t_0}, σ = √(1−ᾱ_{t_0}); independent pixels).
  GaussianCase g;
  const double sd = 0.5;
  auto model = gaussian_full_eps(g.s, g.mu, equicorrelated(g.d, sd, 0.0));
  auto guide = torch::tensor({0.9, -0.8, 0.4, 0.0, 0.6, -0.3}, kF64);
  for (double strength : {0.2, 0.5}) {
    const int64_t t0 = sdedit_start(strength, g.s.T);
    const double ab = g.s.alphas_cumprod.data_ptr<double>()[t0];
    const double a2 = ab, s2 = 1 - ab, v = a2 * sd * sd + s2;
    auto law = exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) {
      SDEditOptions o;
      o.strength = strength;
      o.steps = 100;
      o.clip_x0 = false;
      o.variance = VarianceType::FixedLarge;
      return sdedit(g.s, model, g.batch(guide, x_T.size(0)), nz, o);
    });
    auto mean = g.mu + (a2 * sd * sd / v) * (guide - g.mu);
    const double var = sd * sd * s2 / v + std::pow(std::sqrt(a2) * sd * sd / v, 2) * s2;
    EXPECT_LT(max_abs(law.mean - mean), 1e-6) << strength;
    EXPECT_LT(max_abs(law.cov.diagonal() / var - 1), 0.02) << strength;
  }
  EXPECT_EQ(sdedit_start(1.0, 1000), 999);
  EXPECT_EQ(sdedit_start(0.5, 1000), 499);
  EXPECT_EQ(sdedit_start(1e-6, 1000), 0);
  EXPECT_THROW(sdedit_start(0.0, 1000), std::runtime_error);
  EXPECT_THROW(sdedit_start(1.5, 1000), std::runtime_error);
}

// --- interpolation -----------------------------------------------------------------------------------------

TEST(Interpolation, EndsAreTheInvertedInputs) {
  Schedule s(BetaSchedule::Linear, 1000);
  auto model = gaussian_eps(s, 0.5);
  auto gen = make_generator(11);
  auto xa = (torch::rand({2, 1, 4, 4}, gen) - 0.5).to(kF64), xb = (torch::rand({2, 1, 4, 4}, gen) - 0.5).to(kF64);
  InterpolateOptions o;
  o.frames = 5;
  o.steps = 1000;
  o.clip_x0 = false;
  auto out = interpolate(s, model, model, xa, xb, o).reshape({2, 5, 1, 4, 4});
  // α = 0 and 1: exactly the η = 0 DDIM round trips of the inputs …
  DDIMOptions d;
  d.steps = 1000;
  d.clip_x0 = false;
  auto no_noise = [](at::IntArrayRef) -> torch::Tensor { throw std::logic_error("no draws"); };
  auto round_a = ddim_sample(s, model, ddim_invert(s, model, xa, 1000), no_noise, d);
  auto round_b = ddim_sample(s, model, ddim_invert(s, model, xb, 1000), no_noise, d);
  EXPECT_LT(max_abs(out.select(1, 0) - round_a), 1e-9);
  EXPECT_LT(max_abs(out.select(1, 4) - round_b), 1e-9);
  // … which, on the oracle model, are the inputs themselves up to the first-order error of the inversion
  // (0.0136 at 200 steps, 0.0027 at 1000).
  EXPECT_LT(max_abs(out.select(1, 0) - xa), 5e-3);
  EXPECT_LT(max_abs(out.select(1, 4) - xb), 5e-3);
  // In between: neither end.
  EXPECT_GT(max_abs(out.select(1, 2) - xa), 0.05);
  EXPECT_GT(max_abs(out.select(1, 2) - xb), 0.05);
  EXPECT_THROW(interpolation_latents(xa, xb, 1), std::runtime_error);
}

TEST(Interpolation, SlerpKeepsTheNormOfOrthogonalLatents) {
  auto a = torch::tensor({{3.0, 0.0}}, kF64), b = torch::tensor({{0.0, 3.0}}, kF64);
  auto m = slerp(a, b, 0.5);
  EXPECT_NEAR(m.norm().item<double>(), 3.0, 1e-12);
  EXPECT_NEAR(m[0][0].item<double>(), 3.0 / std::sqrt(2.0), 1e-12);
  EXPECT_TRUE(torch::equal(slerp(a, b, 0.0), a));
  EXPECT_TRUE(torch::equal(slerp(a, b, 1.0), b));
  auto p = slerp(a, a * 2, 0.5);  // parallel: linear
  EXPECT_NEAR(p[0][0].item<double>(), 4.5, 1e-12);
}

TEST(GaussianOracle, DDNMPlusWeighsANoisyObservation) {
  // y = x_0 + n, n ~ N(0, σ_y² I), independent pixels: the posterior mean is μ + s²/(s² + σ_y²)(y − μ). Plain DDNM
  // trusts y completely (its result is y); DDNM+ counts y's noise (eq. 19) and moves towards the posterior mean —
  // only part of the way (measured: max error 0.214 against plain DDNM's 0.273, σ_y = 0.4, s = 0.5), and with
  // almost no variance given y: the scalar λ_t form treats y's one noise draw as if it were fresh each step. For
  // denoising, `denoise_known_sigma` (exact in mean, GaussianOracle.DenoisingMeanIsTweedies) is the method to use.
  at::set_num_threads(1);
  GaussianCase g;
  const double sd = 0.5, sigma_y = 0.4;
  auto model = gaussian_full_eps(g.s, g.mu, equicorrelated(g.d, sd, 0.0));
  auto y = torch::tensor({0.8, -0.6, 0.1, 0.5, -0.9, 0.2}, kF64);
  auto post = gaussian_posterior(g.mu, equicorrelated(g.d, sd, 0.0), torch::eye(g.d, kF64), y, sigma_y);
  IdentityOperator id;
  auto law_of = [&](double sy) {
    return exact_law(g.chw, [&](const torch::Tensor& x_T, const NoiseFn& nz) {
      DDNMOptions o;
      o.steps = 100;
      o.sigma_y = sy;
      o.clip_x0 = false;
      return ddnm_restore(g.s, model, x_T, id, g.batch(y, x_T.size(0)), nz, o);
    });
  };
  auto plain = law_of(0.0), plus = law_of(sigma_y);
  const double e_plain = max_abs(plain.mean - post.mean), e_plus = max_abs(plus.mean - post.mean);
  std::cout << "max |mean − posterior mean|: DDNM " << e_plain << ", DDNM+ " << e_plus << "; DDNM+ variance / posterior's "
            << (plus.cov.diagonal() / post.cov.diagonal()).mean().item<double>() << "\n";
  EXPECT_LT(max_abs(plain.mean - y), 1e-9) << "plain DDNM returns y";
  EXPECT_LT(max_abs(plain.cov), 1e-20);
  EXPECT_LT(e_plus, 0.9 * e_plain);
  EXPECT_GT(max_abs(plus.mean - y), 0.05) << "DDNM+ does not return y";
}
