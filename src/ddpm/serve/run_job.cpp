// run_job.cpp — see run_job.h. Each task mirrors its CLI verb (app/cmd_sample.cpp, app/cmd_restore.cpp) call for
// call, so the images are the CLI's bit for bit; the tests compare them.
#include "ddpm/serve/run_job.h"

#include "ddpm/data/data.h"
#include "ddpm/io/image_io.h"
#include "ddpm/restoration/baselines.h"
#include "ddpm/restoration/denoise.h"
#include "ddpm/restoration/interpolate.h"
#include "ddpm/restoration/masks.h"
#include "ddpm/restoration/operators.h"
#include "ddpm/restoration/sdedit.h"
#include "ddpm/restoration/verbs.h"
#include "ddpm/samplers/generate.h"
#include "ddpm/serve/base64.h"

#include <chrono>
#include <cmath>
#include <memory>

namespace ddpm::serve {

namespace {

std::string png_b64(const torch::Tensor& chw_u8) { return base64_encode(encode_png(chw_u8)); }

nlohmann::json pngs_b64(const torch::Tensor& nchw_u8) {
  nlohmann::json a = nlohmann::json::array();
  for (int64_t i = 0; i < nchw_u8.size(0); ++i) a.push_back(png_b64(nchw_u8[i]));
  return a;
}

// Wraps a batch's ε-model: cancellation before each call, a preview every `every` calls (counted over the job).
struct Watch {
  const JobHooks* hooks;
  const Schedule* schedule;
  int64_t every = 0;
  std::shared_ptr<int64_t> calls = std::make_shared<int64_t>(0);
  int64_t calls_per_chain = 1;  // for the preview's step label

  EpsModel wrap(EpsModel inner) const {
    auto h = hooks;
    auto sch = schedule;
    auto n = calls;
    const int64_t k = every, per = calls_per_chain;
    return [inner, h, sch, n, k, per](const torch::Tensor& x, const torch::Tensor& t) {
      if (h->cancelled && h->cancelled()) throw JobCancelled{};
      auto eps = inner(x, t);
      ++*n;
      if (k > 0 && h->preview && *n % k == 0) {
        const double tt = t.reshape({-1})[0].item<double>();
        h->preview(preview_png(x, eps, alpha_bar_of(*sch, tt)), (*n - 1) % per + 1, per);
      }
      return eps;
    };
  }
};

int64_t default_preview_every(const JobSpec& s, int64_t nfe) {
  if (s.preview_every >= 0) return s.preview_every;
  return std::max<int64_t>(1, nfe / 20);
}

}  // namespace

std::string preview_png(const torch::Tensor& x, const torch::Tensor& eps, double ab) {
  torch::NoGradGuard ng;
  const int64_t n = std::min<int64_t>(x.size(0), 16);
  auto xs = x.slice(0, 0, n).to(torch::kCPU, torch::kFloat32);
  auto es = eps.slice(0, 0, n).to(torch::kCPU, torch::kFloat32);
  auto x0 = ((xs - std::sqrt(1.0 - ab) * es) / std::sqrt(ab)).clamp(-1.0, 1.0);  // [n,C,H,W]
  const int64_t nrow = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  return png_b64(make_grid(to_uint8(x0), nrow, 1));
}

JobOutput run_job(const JobSpec& s, ServedModel& m, const DataSource* data, const JobHooks& hooks) {
  torch::NoGradGuard ng;
  auto& net = *m.net;
  const auto& cfg = m.ck.config;
  const int64_t T = m.timesteps(), K = m.classes(), S = m.size();
  const auto t0 = std::chrono::steady_clock::now();
  JobOutput out;
  nlohmann::json r;
  Watch w{&hooks, m.schedule.get()};
  const int64_t total = s.total_images();

  if (s.task == "sample") {
    GenerateOptions g;
    g.sampler.name = s.sampler;
    g.sampler.steps = s.steps;
    g.sampler.eta = s.eta;
    if (!s.spacing.empty()) g.sampler.spacing = parse_spacing(s.spacing);
    g.sampler.rho = s.rho;
    g.sampler.variance = parse_variance_type(s.variance.empty() ? cfg.diffusion.variance : s.variance);
    g.sampler.clip_x0 = s.clip;
    g.guidance = s.guidance;
    g.seed = s.seed;
    g.num = s.num;
    int64_t nrow = 0;
    if (s.class_all) {
      g.labels = class_rows(K, s.num / K);
      nrow = s.num / K;
    } else if (s.klass >= 0) {
      g.labels.assign(static_cast<size_t>(s.num), s.klass);
    }
    const int64_t nfe = sampler_nfe(g.sampler, T);
    w.every = default_preview_every(s, nfe);
    w.calls_per_chain = nfe;
    g.wrap_model = [&w](EpsModel e) { return w.wrap(std::move(e)); };
    g.on_progress = [&](int64_t start, int64_t, int64_t i, int64_t steps) {
      if (hooks.progress) hooks.progress(i, steps, start, s.num);
    };
    auto images = to_uint8(generate(net, cfg, g));  // [N,C,H,W]
    if (nrow == 0) nrow = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(s.num))));
    r["images"] = pngs_b64(images);
    r["grid"] = png_b64(make_grid(images, nrow));
    r["nfe"] = nfe;
    r["steps"] = sampler_steps(g.sampler, T);
    out.images = s.num;
    out.nfe = nfe * s.num;
  } else {
    VerbRunner vr;
    vr.schedule = m.schedule.get();
    vr.device = m.device;
    vr.batch = kDefaultSampleBatch;
    vr.eps = [&](int64_t n) {
      torch::Tensor labels;
      if (s.klass >= 0) labels = torch::full({n}, s.klass, torch::kLong);  // [n]
      return w.wrap(network_eps(net, cfg, *m.schedule, labels, s.guidance));
    };
    vr.on_step = [&](int64_t first, int64_t, int64_t i, int64_t steps, const std::string&) {
      if (hooks.progress) hooks.progress(i, steps, first, total);
    };
    const auto truth = s.image.unsqueeze(0);  // [1,C,H,W] uint8 (the ground truth with data_index)
    const bool gt = s.data_index >= 0;
    const int64_t Kr = s.num;
    torch::Tensor results, degraded_show, degraded;
    nlohmann::json metrics;
    int64_t nfe = 0;
    const auto variance = s.variance.empty() ? VarianceType::FixedSmall : parse_variance_type(s.variance);
    if (s.task == "inpaint") {
      InpaintParams p;
      p.method = s.method;
      p.steps = s.steps;
      p.jump_length = s.jump_length;
      p.resample = s.resample;
      p.eta = s.eta;
      p.variance = variance;
      nfe = inpaint_nfe(p);
      w.every = default_preview_every(s, nfe);
      w.calls_per_chain = nfe;
      const auto y = to_model_range(truth) * s.keep;  // [1,C,S,S]
      results = to_uint8(inpaint_results(vr, y, s.keep, Kr, s.seed, p));
      degraded = degraded_show = to_uint8(y);
      if (gt) {
        score_inpaint(metrics, results, Kr, truth, y, s.keep);
      }
      r["missing_fraction"] = missing_fraction(s.keep);
    } else if (s.task == "upscale") {
      UpscaleParams p;
      p.method = s.method;
      p.factor = s.factor;
      p.steps = s.steps;
      p.eta = s.eta;
      p.variance = variance;
      nfe = upscale_steps(p);
      w.every = default_preview_every(s, nfe);
      w.calls_per_chain = nfe;
      const AvgPoolOperator op(s.factor);
      const auto y = gt ? op.apply(to_model_range(truth)) : to_model_range(truth);  // [1,C,S/f,S/f]
      results = to_uint8(upscale_results(vr, y, Kr, s.seed, p));
      degraded = to_uint8(y);
      degraded_show = to_uint8(op.pinv(y));
      if (gt) {
        score_upscale(metrics, results, Kr, truth, y, s.factor);
      }
    } else if (s.task == "denoise") {
      const double sm = 2.0 * s.sigma;
      nfe = denoise_nfe(*m.schedule, sm, s.steps);
      w.every = default_preview_every(s, nfe);
      w.calls_per_chain = nfe;
      const auto x = to_model_range(truth);
      const auto y = gt ? noisy_inputs(x, {s.data_index}, s.seed, sm) : x;
      results = to_uint8(denoise_results(vr, y, sm, Kr, s.seed, s.steps, variance));
      degraded = degraded_show = to_uint8(y);
      r["t_start"] = denoise_start(*m.schedule, sm);
      if (gt) {
        score_denoise(metrics, results, Kr, truth, y, x);
      }
    } else if (s.task == "edit") {
      const int64_t t_start = sdedit_start(s.strength, T);
      nfe = static_cast<int64_t>(grid_from(t_start, sdedit_steps(s.strength, s.steps)).size());
      w.every = default_preview_every(s, nfe);
      w.calls_per_chain = nfe;
      results = to_uint8(edit_results(vr, to_model_range(truth), s.keep, Kr, s.seed, s.strength, s.steps, variance));
      degraded = degraded_show = truth;
      r["t_start"] = t_start;
      if (gt) put_mean_se(metrics, "psnr_guide", psnr(unit_pixels_u8(first_results(results, 1, Kr)), unit_pixels_u8(truth)));
    } else if (s.task == "interpolate") {
      const int64_t steps = s.steps > 0 ? s.steps : InterpolateOptions{}.steps;
      nfe = steps;
      w.every = default_preview_every(s, steps);
      w.calls_per_chain = steps;
      const auto ends_u8 = torch::stack({s.image, s.image_b});  // [2,C,S,S]
      results = to_uint8(interpolate_frames(vr, to_model_range(ends_u8), s.frames, steps));
      degraded = degraded_show = ends_u8;
      r["nfe_inversion"] = steps;
    }
    (void)S;
    r["images"] = pngs_b64(results);
    r["inputs"] = pngs_b64(degraded);
    std::vector<torch::Tensor> cells;
    if (s.task == "interpolate") {
      cells = {degraded.slice(0, 0, 1), results, degraded.slice(0, 1, 2)};
    } else {
      cells = {degraded_show, results};
      if (gt) cells.push_back(truth);
    }
    const auto row = torch::cat(cells);
    r["grid"] = png_b64(make_grid(row, row.size(0)));
    r["nfe"] = nfe;
    if (!metrics.empty()) r["metrics"] = metrics;
    out.images = results.size(0);
    out.nfe = nfe * results.size(0) + (s.task == "interpolate" ? 2 * nfe : 0);  // + the two inversions
  }
  r["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r["seed"] = s.seed;
  r["command"] = command_line(s, m, data);
  r["num_images"] = out.images;
  out.result = std::move(r);
  return out;
}

}  // namespace ddpm::serve
