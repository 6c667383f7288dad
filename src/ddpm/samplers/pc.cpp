// pc.cpp — see pc.h. Notation: τ_S > … > τ_1 the visited times, a = ᾱ_{τ_i}, a' = ᾱ_{τ_{i−1}}, b = 1 − a/a'.
#include "ddpm/samplers/pc.h"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace ddpm {

PCPredictor parse_pc_predictor(const std::string& name) {
  if (name == "reverse-diffusion") return PCPredictor::ReverseDiffusion;
  if (name == "ancestral") return PCPredictor::Ancestral;
  throw std::runtime_error("unknown predictor '" + name + "' (expected reverse-diffusion or ancestral)");
}

std::string to_string(PCPredictor p) { return p == PCPredictor::Ancestral ? "ancestral" : "reverse-diffusion"; }

void check_pc_options(const PCOptions& o) {
  if (o.corrector_steps < 0)
    throw std::runtime_error("--corrector-steps must be >= 0, got " + std::to_string(o.corrector_steps));
  if (!(o.snr > 0) || !std::isfinite(o.snr))
    throw std::runtime_error("--snr must be a positive number, got " + std::to_string(o.snr));
}

int64_t pc_nfe(int64_t steps, int64_t corrector_steps) { return steps + corrector_steps * (steps - 1); }

torch::Tensor pc_sample(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                        const NoiseFn& noise, const PCOptions& opts) {
  check_pc_options(opts);
  const auto ts = time_grid(opts.spacing, schedule, opts.steps == 0 ? schedule.T : opts.steps);  // ascending
  const auto S = static_cast<int64_t>(ts.size());
  const auto* betas = schedule.betas.data_ptr<double>();
  auto draw = [&](const torch::Tensor& like) { return noise(like.sizes()).to(like.device(), like.scalar_type()); };
  auto x = x_T;  // [B,C,H,W]
  for (int64_t i = S - 1; i >= 0; --i) {
    const double a = alpha_bar_of(schedule, ts[i]);
    const auto d = denoise(model, x, schedule, ts[i], opts.clip_x0);  // ε̂, x̂_0 (eq. 15)  [B,C,H,W]
    if (i == 0) {
      x = d.x0;  // the last step lands on ᾱ = 1: x̂_0
      if (opts.on_step) opts.on_step(S, S);
      break;
    }
    const double a_prev = alpha_bar_of(schedule, ts[i - 1]);
    const double b = 1.0 - a / a_prev;
    const auto score = d.eps * (-1.0 / std::sqrt(1.0 - a));  // ∇ log p at τ_i  [B,C,H,W]
    if (opts.predictor == PCPredictor::ReverseDiffusion)
      x = (2.0 - std::sqrt(1.0 - b)) * x + b * score + std::sqrt(b) * draw(x);  // Algorithm 3, line 3
    else
      x = (x + b * score) / std::sqrt(1.0 - b) + std::sqrt(b) * draw(x);        // App. F, VP ancestral
    // Corrector (Algorithm 5, VP): Langevin steps at τ_{i−1} with the snr step-size rule, per image.
    const double alpha = 1.0 - betas[static_cast<int64_t>(std::floor(ts[i - 1]))];
    for (int64_t j = 0; j < opts.corrector_steps; ++j) {
      const auto g = denoise(model, x, schedule, ts[i - 1], opts.clip_x0).eps * (-1.0 / std::sqrt(1.0 - a_prev));
      const auto z = draw(x);                                                         // [B,C,H,W]
      const auto B = x.size(0);
      const auto z_norm = z.reshape({B, -1}).norm(2, 1);                              // [B]
      const auto g_norm = g.reshape({B, -1}).norm(2, 1);                              // [B]
      auto step = 2.0 * alpha * (opts.snr * z_norm / g_norm).pow(2);                  // ε = 2α(r‖z‖/‖g‖)²  [B]
      step = torch::where(g_norm > 0, step, torch::zeros_like(step));                 // no move at a zero score
      std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
      shape[0] = B;
      step = step.view(shape);                                                        // [B,1,1,1]
      x = x + step * g + (2.0 * step).sqrt() * z;
    }
    if (opts.on_step) opts.on_step(S - i, S);
  }
  return x;
}

}  // namespace ddpm
