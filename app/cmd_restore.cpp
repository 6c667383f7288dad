// cmd_restore.cpp — the restoration verbs on a trained model: `ddpm inpaint` (RePaint, replacement, DDNM),
// `ddpm upscale` (DDNM, ILVR), `ddpm denoise` (known-σ reverse chain), `ddpm edit` (SDEdit) and
// `ddpm interpolate` (DDIM inversion + slerp). Each checks its inputs against the model, degrades ground-truth
// images itself with --data (and then reports PSNR next to a classical baseline), and writes a grid or an npz.
// Not here: the methods (src/ddpm/restoration/), masks and baselines (restoration/masks.h, baselines.h), the
// shared options, batching and outputs (restore_common.h).
#include "commands.h"
#include "restore_common.h"

#include "ddpm/data/data.h"
#include "ddpm/restoration/baselines.h"
#include "ddpm/restoration/ddnm.h"
#include "ddpm/restoration/denoise.h"
#include "ddpm/restoration/ilvr.h"
#include "ddpm/restoration/interpolate.h"
#include "ddpm/restoration/masks.h"
#include "ddpm/restoration/operators.h"
#include "ddpm/restoration/repaint.h"
#include "ddpm/restoration/replace.h"
#include "ddpm/restoration/sdedit.h"
#include "ddpm/restoration/verbs.h"
#include "ddpm/samplers/ddim.h"
#include "ddpm/util/runtime.h"

#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ddpm::app {
using namespace restore;

namespace {

constexpr const char* kMaskConvention =
    "Mask files: WHITE (>= 128) = the region to fill or change, BLACK = keep (the AUTOMATIC1111 / Stable Diffusion "
    "convention); any channel count (RGB: its luminance), the model's image size; a mask that keeps every pixel or "
    "none is an error.";

std::string psnr_summary(const nlohmann::json& j, bool missing = false) {
  if (!j.contains("psnr")) return "";
  auto part = [&](const std::string& suffix) {
    std::string s = fixed2(j["psnr" + suffix].get<double>()) + " dB";
    if (j.contains("psnr_posterior_mean" + suffix))
      s += " (mean of the results " + fixed2(j["psnr_posterior_mean" + suffix].get<double>()) + ")";
    return s + " vs baseline " + fixed2(j["psnr_baseline" + suffix].get<double>());
  };
  return "; PSNR " + part("") + (missing ? "; missing region " + part("_missing") : std::string());
}

std::string count_summary(const std::string& verb, int64_t N, int64_t K) {
  return verb + ": " + std::to_string(N) + (N == 1 ? " input" : " inputs") + " x " + std::to_string(K) +
         (K == 1 ? " result" : " results");
}

std::string num_str(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// ------------------------------------------------------------------------------------------------- inpaint --
struct InpaintArgs {
  CommonArgs c;
  SourceArgs src;
  std::string mask, mask_shape, method = "repaint", variance;
  int64_t steps = 0, jump_length = RePaintOptions{}.jump_length, resample = RePaintOptions{}.resample;
  double eta = DDNMOptions{}.eta;
};

// --eta of DDNM: [0, 1].
void check_eta(double eta) {
  if (!(eta >= 0.0 && eta <= 1.0)) throw std::runtime_error("--eta " + num_str(eta) + ": must be in [0, 1]");
}

}  // namespace

Command add_inpaint(CLI::App& root) {
  auto a = std::make_shared<InpaintArgs>();
  auto* c = root.add_subcommand("inpaint", "Fill the masked region of images with a trained model (RePaint, "
                                           "replacement or DDNM)");
  c->option_defaults()->always_capture_default();
  add_checkpoint_option(c, a->c);
  add_source_options(c, a->src, "The image to inpaint (PNG/JPEG at the model's size; its pixels under the mask are "
                                "ignored)");
  auto* o_mask = c->add_option("--mask", a->mask, "Mask image: white = fill, black = keep (see below)");
  auto* o_shape = c->add_option("--mask-shape", a->mask_shape,
                                "center (the middle square of half the side) | left (left half) | top (top half) | "
                                "lines (rows 1, 3, 5, ... missing) | random:P (a fraction P of the pixels, from "
                                "--seed)");
  o_mask->excludes(o_shape);
  c->add_option("--method", a->method, "repaint (resampling, Lugmayr et al. 2022) | replace (paste the noised known "
                                       "pixels every step) | ddnm (null-space projection, Wang et al. 2022)")
      ->check(CLI::IsMember({"repaint", "replace", "ddnm"}));
  c->add_option("--steps", a->steps, "Levels of the respaced chain; 0 = the method's default (100)")
      ->check(CLI::NonNegativeNumber);
  auto* o_jump = c->add_option("--jump-length", a->jump_length, "repaint: levels per jump back up (L)")
                     ->check(CLI::PositiveNumber);
  auto* o_res = c->add_option("--resample", a->resample, "repaint: visits of each jump point (R; 1 = replace)")
                    ->check(CLI::PositiveNumber);
  auto* o_eta = c->add_option("--eta", a->eta, "ddnm: the noise of each step, in [0, 1]");
  auto* o_var = add_variance_option(c, a->variance);
  add_common_options(c, a->c, "inpainted", "the inputs uint8 [N,H,W,C] with the missing region mid-gray");
  add_baseline_option(c, a->c, "the known-pixel mean fill");
  c->footer(std::string(kMaskConvention) +
            " With --data the images are masked here and the JSON reports PSNR (all pixels, and the missing region "
            "alone) next to the baseline that fills the missing pixels with the mean of the known ones.");

  auto run = [=]() -> int {
    auto& A = *a;
    auto s = open_session("inpaint", A.c, "inpainted");
    check_steps(*s, A.steps);
    if (o_eta->count() && A.method != "ddnm") throw std::runtime_error("--eta applies to --method ddnm only");
    if ((o_jump->count() || o_res->count()) && A.method != "repaint")
      throw std::runtime_error(std::string(o_jump->count() ? "--jump-length" : "--resample") +
                               " applies to --method repaint only");
    if (o_var->count() && A.method == "ddnm")
      throw std::runtime_error("--variance applies to --method repaint|replace only");
    check_eta(A.eta);
    const auto variance = resolve_variance(*s, A.variance);
    InpaintParams p;
    p.method = A.method;
    p.steps = A.steps;
    p.jump_length = A.jump_length;
    p.resample = A.resample;
    p.eta = A.eta;
    p.variance = variance;
    const int64_t steps = inpaint_steps(p), nfe = inpaint_nfe(p);
    const auto src = load_source(*s, A.src);
    if (A.mask.empty() && A.mask_shape.empty())
      throw std::runtime_error("give the region to fill: --mask FILE (white = fill) or --mask-shape NAME");
    torch::Tensor keep;  // [1,1,S,S], 1 = known
    if (!A.mask.empty()) {
      keep = load_mask_file(A.mask, s->size, s->size, "--mask");
    } else {
      try {
        keep = mask_from_shape(A.mask_shape, s->size, s->size, A.c.seed);
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("--mask-shape: ") + e.what());
      }
    }
    const int64_t N = src.images.size(0), K = A.c.num, total = N * K;
    const auto x = to_model_range(src.images);  // [N,C,S,S]
    const auto y = x * keep;                     // A x: the missing pixels 0 (mid-gray)

    load_network(*s);
    auto out = inpaint_results(runner(*s), y, keep, K, A.c.seed, p);
    const auto results = to_uint8(out), degraded = to_uint8(y);
    torch::Tensor baseline;
    nlohmann::json j = {{"command", "inpaint"}, {"method", A.method}, {"steps", steps}, {"nfe", nfe},
                        {"num", K},             {"inputs", N},        {"results", total}};
    if (A.method == "repaint") {
      j["jump_length"] = A.jump_length;
      j["resample"] = A.resample;
    }
    if (A.method == "ddnm") j["eta"] = A.eta;
    else j["variance"] = to_string(variance);
    j["mask"] = A.mask.empty() ? A.mask_shape : A.mask;
    j["missing_fraction"] = missing_fraction(keep);
    if (s->forward_per_nfe() != 1) j["forward_images_per_image"] = nfe * s->forward_per_nfe();
    if (src.ground_truth) {
      j["data"] = src.description;
      baseline = score_inpaint(j, results, K, src.images, y, keep);
    }
    auto o = rows_of(degraded, results, K, src.ground_truth ? src.images : torch::Tensor());
    o.npz = {results, degraded};
    o.baseline = baseline;
    finish(*s, o, j, total,
           count_summary("inpaint", N, K) + ", " + A.method + " " + std::to_string(steps) + " steps (" +
               std::to_string(nfe) + " NFE per result)" + psnr_summary(j, true));
    return 0;
  };
  return {c, run};
}

// --------------------------------------------------------------------------------------------------- upscale --
namespace {
struct UpscaleArgs {
  CommonArgs c;
  SourceArgs src;
  std::string method = "ddnm", variance;
  int64_t factor = 0, steps = 0;
  double eta = DDNMOptions{}.eta;
};
}  // namespace

Command add_upscale(CLI::App& root) {
  auto a = std::make_shared<UpscaleArgs>();
  auto* c = root.add_subcommand("upscale", "Super-resolution by an integer factor with a trained model (DDNM or "
                                           "ILVR; the degradation is K×K average pooling)");
  c->option_defaults()->always_capture_default();
  add_checkpoint_option(c, a->c);
  add_source_options(c, a->src, "The low-resolution image: the model's size divided by --factor per side");
  c->add_option("--factor", a->factor, "K: the output has K times the pixels per side; must divide the model's size")
      ->required();
  c->add_option("--method", a->method, "ddnm (range-space correction, Wang et al. 2022) | ilvr (low-pass "
                                       "replacement, Choi et al. 2021)")
      ->check(CLI::IsMember({"ddnm", "ilvr"}));
  c->add_option("--steps", a->steps, "Model calls, respaced; 0 = the method's default (100)")
      ->check(CLI::NonNegativeNumber);
  auto* o_eta = c->add_option("--eta", a->eta, "ddnm: the noise of each step, in [0, 1]");
  auto* o_var = add_variance_option(c, a->variance);
  add_common_options(c, a->c, "upscaled", "the low-resolution inputs uint8 [N,H/K,W/K,C]");
  add_baseline_option(c, a->c, "bicubic upsampling");
  c->footer("With --data the images are average-pooled here and the JSON reports PSNR next to bicubic upsampling "
            "of the same low-resolution images. The grid's first column shows the input enlarged (nearest).");

  auto run = [=]() -> int {
    auto& A = *a;
    auto s = open_session("upscale", A.c, "upscaled");
    check_steps(*s, A.steps);
    if (o_eta->count() && A.method != "ddnm") throw std::runtime_error("--eta applies to --method ddnm only");
    if (o_var->count() && A.method != "ilvr") throw std::runtime_error("--variance applies to --method ilvr only");
    check_eta(A.eta);
    const auto variance = resolve_variance(*s, A.variance);
    const int64_t K = A.factor;
    if (K < 2) throw std::runtime_error("--factor " + std::to_string(K) + ": must be at least 2");
    if (s->size % K != 0)
      throw std::runtime_error("--factor " + std::to_string(K) + " does not divide the model's image size " +
                               std::to_string(s->size));
    UpscaleParams sp;
    sp.method = A.method;
    sp.steps = A.steps;
    const int64_t steps = upscale_steps(sp);
    const auto src = load_source(*s, A.src, /*image_is_low_res=*/true, K);
    const AvgPoolOperator op(K);
    // [N,C,S/K,S/K]: pooled here from the ground truth, or the low-resolution file as given
    const auto y = src.ground_truth ? op.apply(to_model_range(src.images)) : to_model_range(src.images);
    const int64_t N = y.size(0), R = A.c.num, total = N * R;

    load_network(*s);
    UpscaleParams p;
    p.method = A.method;
    p.factor = K;
    p.steps = steps;
    p.eta = A.eta;
    p.variance = variance;
    auto out = upscale_results(runner(*s), y, R, A.c.seed, p);
    const auto results = to_uint8(out);
    torch::Tensor baseline;
    nlohmann::json j = {{"command", "upscale"}, {"method", A.method}, {"factor", K},      {"steps", steps},
                        {"nfe", steps},         {"num", R},           {"inputs", N},      {"results", total}};
    if (A.method == "ddnm") j["eta"] = A.eta;
    else j["variance"] = to_string(variance);
    if (s->forward_per_nfe() != 1) j["forward_images_per_image"] = steps * s->forward_per_nfe();
    if (src.ground_truth) {
      j["data"] = src.description;
      baseline = score_upscale(j, results, R, src.images, y, K);
    }
    auto o = rows_of(to_uint8(op.pinv(y)), results, R, src.ground_truth ? src.images : torch::Tensor());
    o.npz = {results, to_uint8(y)};
    o.baseline = baseline;
    finish(*s, o, j, total,
           count_summary("upscale", N, R) + ", x" + std::to_string(K) + " " + A.method + " " + std::to_string(steps) +
               " steps" + psnr_summary(j));
    return 0;
  };
  return {c, run};
}

// --------------------------------------------------------------------------------------------------- denoise --
namespace {
struct DenoiseArgs {
  CommonArgs c;
  SourceArgs src;
  double sigma = 0, add_noise = 0;
  int64_t steps = 0;
  std::string variance;
};
}  // namespace

Command add_denoise(CLI::App& root) {
  auto a = std::make_shared<DenoiseArgs>();
  auto* c = root.add_subcommand("denoise", "Remove Gaussian noise of a known level with a trained model (the reverse "
                                           "chain from the matching noise level)");
  c->option_defaults()->always_capture_default();
  add_checkpoint_option(c, a->c);
  add_source_options(c, a->src, "The noisy image (PNG/JPEG at the model's size); give its noise level with --sigma");
  auto* o_sigma = c->add_option("--sigma", a->sigma, "With --image: the std of its Gaussian noise in [0, 1] pixel "
                                                     "units (e.g. 0.1 = 25.5 of 255)");
  auto* o_add = c->add_option("--add-noise", a->add_noise, "With --data: add Gaussian noise of this std ([0, 1] "
                                                           "units, from --seed) to the images, then denoise them");
  o_sigma->excludes(a->src.o_data);
  o_add->excludes(a->src.o_image);
  c->add_option("--steps", a->steps, "Reverse steps from the matching noise level (at most that level + 1); 0 = 50")
      ->check(CLI::NonNegativeNumber);
  add_variance_option(c, a->variance);
  add_common_options(c, a->c, "denoised", "the noisy inputs uint8 [N,H,W,C] (clamped)");
  add_baseline_option(c, a->c, "the oracle-tuned Gaussian filter");
  c->footer("The noise std must be > 0 and no larger than the schedule's largest noise. With --data the JSON reports "
            "PSNR next to a Gaussian filter whose std (0.3 to 3 px) is chosen to maximise the mean PSNR on the very "
            "same images: an oracle-tuned baseline.");

  auto run = [=]() -> int {
    auto& A = *a;
    auto s = open_session("denoise", A.c, "denoised");
    check_steps(*s, A.steps);
    if (!A.src.image.empty() && !o_sigma->count())
      throw std::runtime_error("--image needs --sigma S: the std of its noise in [0, 1] pixel units");
    if (!A.src.data.empty() && !o_add->count())
      throw std::runtime_error("--data needs --add-noise S: the std of the noise to add, in [0, 1] pixel units");
    const std::string flag = o_add->count() ? "--add-noise" : "--sigma";
    const double sigma = o_add->count() ? A.add_noise : A.sigma;
    if (!A.src.image.empty() || !A.src.data.empty()) {
      if (!(sigma > 0)) throw std::runtime_error(flag + " " + num_str(sigma) + ": the noise std must be > 0");
    }
    const double sigma_model = 2.0 * sigma;  // [0, 1] std -> model units ([−1, 1])
    int64_t t_start = 0;
    if (sigma > 0) {
      try {
        t_start = denoise_start(*s->schedule, sigma_model);
      } catch (const std::exception& e) {
        throw std::runtime_error(flag + " " + num_str(sigma) + ": " + e.what());
      }
    }
    const int64_t steps = A.steps > 0 ? A.steps : DenoiseOptions{}.steps;
    const auto variance = resolve_variance(*s, A.variance);
    const auto src = load_source(*s, A.src);
    const int64_t nfe = static_cast<int64_t>(grid_from(t_start, steps).size());
    auto x = to_model_range(src.images);  // [N,C,S,S]
    const auto y = src.ground_truth ? noisy_inputs(x, src.indices, A.c.seed, sigma_model) : x;  // not clamped
    const int64_t N = y.size(0), K = A.c.num, total = N * K;

    load_network(*s);
    auto out = denoise_results(runner(*s), y, sigma_model, K, A.c.seed, steps, variance);
    const auto results = to_uint8(out), degraded = to_uint8(y);
    torch::Tensor baseline;
    nlohmann::json j = {{"command", "denoise"},     {"method", "known-sigma reverse chain"},
                        {"sigma", sigma},           {"sigma_model", sigma_model},
                        {"t_start", t_start},       {"steps", steps},
                        {"nfe", nfe},               {"variance", to_string(variance)},
                        {"num", K},                 {"inputs", N},
                        {"results", total}};
    if (s->forward_per_nfe() != 1) j["forward_images_per_image"] = nfe * s->forward_per_nfe();
    if (src.ground_truth) {
      j["data"] = src.description;
      baseline = score_denoise(j, results, K, src.images, y, x);
    }
    auto o = rows_of(degraded, results, K, src.ground_truth ? src.images : torch::Tensor());
    o.npz = {results, degraded};
    o.baseline = baseline;
    finish(*s, o, j, total,
           count_summary("denoise", N, K) + ", sigma " + num_str(sigma) + " from t = " + std::to_string(t_start) +
               ", " + std::to_string(nfe) + " NFE per result" + psnr_summary(j));
    return 0;
  };
  return {c, run};
}

// ------------------------------------------------------------------------------------------------------ edit --
namespace {
struct EditArgs {
  CommonArgs c;
  SourceArgs src;
  std::string mask, variance;
  double strength = 0;
  int64_t steps = 0;
};
}  // namespace

Command add_edit(CLI::App& root) {
  auto a = std::make_shared<EditArgs>();
  auto* c = root.add_subcommand("edit", "Re-imagine a guide image (a sketch, a collage) with a trained model: "
                                        "SDEdit, noise it to --strength and run the reverse chain");
  c->option_defaults()->always_capture_default();
  add_checkpoint_option(c, a->c);
  add_source_options(c, a->src, "The guide image (PNG/JPEG at the model's size)");
  c->add_option("--strength", a->strength, "In (0, 1]: t_0 = strength·T; low keeps detail, high only the layout")
      ->required();
  c->add_option("--mask", a->mask, "Optional mask image: white = the region to change, black = keep exactly");
  c->add_option("--steps", a->steps, "Reverse steps from t_0 (at most t_0 + 1); 0 = round(100·strength)")
      ->check(CLI::NonNegativeNumber);
  add_variance_option(c, a->variance);
  add_common_options(c, a->c, "edited", "the guide images uint8 [N,H,W,C]");
  c->footer(std::string(kMaskConvention) + " With --data the dataset images are the guides and the JSON reports the "
            "PSNR of the results to their guides (how far the edit moved them).");

  auto run = [=]() -> int {
    auto& A = *a;
    auto s = open_session("edit", A.c, "edited");
    check_steps(*s, A.steps);
    int64_t t0 = 0;
    try {
      t0 = sdedit_start(A.strength, s->T);
    } catch (const std::exception& e) {
      throw std::runtime_error("--strength " + num_str(A.strength) + ": " + e.what());
    }
    const int64_t steps = sdedit_steps(A.strength, A.steps);
    const auto variance = resolve_variance(*s, A.variance);
    const int64_t nfe = static_cast<int64_t>(grid_from(t0, steps).size());
    const auto src = load_source(*s, A.src);  // the guides: a file, or dataset images (then PSNR to the guide)
    const auto& guide_u8 = src.images;        // [N,C,S,S]
    torch::Tensor keep;
    if (!A.mask.empty()) keep = load_mask_file(A.mask, s->size, s->size, "--mask");
    const int64_t N = guide_u8.size(0), K = A.c.num, total = N * K;
    const auto guide = to_model_range(guide_u8);

    load_network(*s);
    auto out = edit_results(runner(*s), guide, keep, K, A.c.seed, A.strength, A.steps, variance);
    const auto results = to_uint8(out);
    nlohmann::json j = {{"command", "edit"}, {"method", "sdedit"}, {"strength", A.strength}, {"t_start", t0},
                        {"steps", steps},    {"nfe", nfe},         {"num", K},               {"inputs", N},
                        {"results", total},  {"variance", to_string(variance)}};
    if (!A.mask.empty()) {
      j["mask"] = A.mask;
      j["changed_fraction"] = missing_fraction(keep);
    }
    if (s->forward_per_nfe() != 1) j["forward_images_per_image"] = nfe * s->forward_per_nfe();
    if (src.ground_truth) {  // how far the results moved from their guides
      j["data"] = src.description;
      put_mean_se(j, "psnr_guide", psnr(unit_pixels_u8(first_results(results, N, K)), unit_pixels_u8(guide_u8)));
    }
    auto o = rows_of(guide_u8, results, K, torch::Tensor());
    o.npz = {results, guide_u8};
    finish(*s, o, j, total,
           count_summary("edit", N, K) + ", strength " + num_str(A.strength) + " (t_0 = " + std::to_string(t0) + "), " +
               std::to_string(nfe) + " NFE per result");
    return 0;
  };
  return {c, run};
}

// ----------------------------------------------------------------------------------------------- interpolate --
namespace {
struct InterpolateArgs {
  CommonArgs c;
  std::string a, b;
  int64_t frames = InterpolateOptions{}.frames, steps = 0;
};
}  // namespace

Command add_interpolate(CLI::App& root) {
  auto a = std::make_shared<InterpolateArgs>();
  auto* c = root.add_subcommand("interpolate", "Morph one image into another through the deterministic (DDIM) "
                                               "latent space: invert both, slerp, sample back");
  c->option_defaults()->always_capture_default();
  add_checkpoint_option(c, a->c);
  c->add_option("--a", a->a, "The first image (PNG/JPEG at the model's size)")->required();
  c->add_option("--b", a->b, "The last image")->required();
  c->add_option("--frames", a->frames, "Images from a to b, ends included (>= 2)");
  c->add_option("--steps", a->steps, "DDIM steps of the inversion and of the sampling back; 0 = 50")
      ->check(CLI::NonNegativeNumber);
  add_common_options(c, a->c, "interpolation", "the two endpoint images uint8 [2,H,W,C] (--a, --b)");
  c->footer("The grid is one row: --a, the frames, --b. The first and last frames are the η = 0 DDIM round trips "
            "of --a and --b. --num must be 1 (the sequence is deterministic).");

  auto run = [=]() -> int {
    auto& A = *a;
    if (A.c.o_num->count() && A.c.num != 1)
      throw std::runtime_error("--num " + std::to_string(A.c.num) +
                               ": interpolate makes one deterministic sequence (use --frames for more images)");
    auto s = open_session("interpolate", A.c, "interpolation");
    check_steps(*s, A.steps);
    if (A.frames < 2) throw std::runtime_error("--frames " + std::to_string(A.frames) + ": at least 2 (the two ends)");
    const int64_t steps = A.steps > 0 ? A.steps : InterpolateOptions{}.steps;
    const auto ia = load_input_image(A.a, "--a", s->channels, s->size, s->size, "the model's image size");
    const auto ib = load_input_image(A.b, "--b", s->channels, s->size, s->size, "the model's image size");
    const auto ends_u8 = torch::stack({ia, ib});  // [2,C,S,S]
    const int64_t F = A.frames;

    load_network(*s);
    auto out = interpolate_frames(runner(*s), to_model_range(ends_u8), F, steps);
    const auto frames = to_uint8(out);
    nlohmann::json j = {{"command", "interpolate"}, {"method", "ddim inversion + slerp"}, {"frames", F},
                        {"steps", steps}, {"nfe", steps}, {"nfe_inversion", steps}, {"num", 1}, {"inputs", 2},
                        {"results", F}};
    if (s->forward_per_nfe() != 1) j["forward_images_per_image"] = steps * s->forward_per_nfe();
    Outputs o;
    o.grid_cells = torch::cat({ends_u8.slice(0, 0, 1), frames, ends_u8.slice(0, 1, 2)});
    o.cols = F + 2;
    o.files = frames;
    o.npz = {frames, ends_u8};
    finish(*s, o, j, F,
           "interpolate: " + std::to_string(F) + " frames, " + std::to_string(steps) + " DDIM steps each way (" +
               std::to_string(2 * steps + F * steps) + " NFE in all)");
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
