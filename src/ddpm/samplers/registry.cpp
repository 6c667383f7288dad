// registry.cpp — see registry.h.
#include "ddpm/samplers/registry.h"

#include "ddpm/samplers/ddim.h"
#include "ddpm/samplers/ddpm_sampler.h"
#include "ddpm/samplers/dpm_solver.h"
#include "ddpm/samplers/edm_sde.h"
#include "ddpm/samplers/euler.h"
#include "ddpm/samplers/heun.h"
#include "ddpm/samplers/vp_sde.h"

#include <stdexcept>

namespace ddpm {
namespace {
int64_t default_steps(const std::string& name, int64_t T) {
  if (name == "ddpm" || name == "vp-sde" || name == "pc") return T;
  if (name == "ddim" || name == "euler") return std::min<int64_t>(50, T);
  if (name == "heun" || name == "edm-sde") return std::min<int64_t>(18, T);
  return std::min<int64_t>(20, T);  // dpm++2m, dpm++3m
}
EDMSDEOptions edm_sde_options(const SamplerOptions& o, int64_t steps, Spacing spacing) {
  EDMSDEOptions e;
  e.steps = steps;
  e.spacing = spacing;
  e.rho = o.rho;
  e.clip_x0 = o.clip_x0;
  e.on_step = o.on_step;
  e.s_churn = o.s_churn;
  e.s_tmin = o.s_tmin;
  e.s_tmax = o.s_tmax;
  e.s_noise = o.s_noise;
  return e;
}

PCOptions pc_options(const SamplerOptions& o, int64_t steps, Spacing spacing) {
  PCOptions p;
  p.steps = steps;
  p.spacing = spacing;
  p.corrector_steps = o.corrector_steps;
  p.snr = o.snr;
  p.predictor = o.predictor;
  p.clip_x0 = o.clip_x0;
  p.on_step = o.on_step;
  return p;
}
}  // namespace

std::vector<std::string> sampler_names() {
  return {"ddpm", "ddim", "dpm++2m", "dpm++3m", "euler", "heun", "edm-sde", "vp-sde", "pc"};
}

void check_sampler_options(const SamplerOptions& o, int64_t T) {
  bool known = false;
  std::string all;
  for (const auto& n : sampler_names()) {
    known = known || n == o.name;
    all += (all.empty() ? "" : ", ") + n;
  }
  if (!known) throw std::runtime_error("unknown sampler '" + o.name + "' (expected one of: " + all + ")");
  const int64_t s = sampler_steps(o, T);
  if (s < 1 || s > T)
    throw std::runtime_error("--steps " + std::to_string(s) + " is outside [1, " + std::to_string(T) +
                             "] for this model (T = " + std::to_string(T) + ")");
  if (o.eta < 0) throw std::runtime_error("--eta must be >= 0, got " + std::to_string(o.eta));
  if (o.eta != 0 && o.name != "ddim") throw std::runtime_error("--eta applies to the ddim sampler only");
  if (!(o.rho > 0)) throw std::runtime_error("--rho must be positive");
  check_edm_sde_options(edm_sde_options(o, s, Spacing::Karras));
  check_pc_options(pc_options(o, s, Spacing::Uniform));
}

int64_t sampler_steps(const SamplerOptions& o, int64_t T) { return o.steps > 0 ? o.steps : default_steps(o.name, T); }

Spacing sampler_spacing(const SamplerOptions& o) {
  if (o.spacing) return *o.spacing;
  if (o.name == "dpm++2m" || o.name == "dpm++3m") return Spacing::LogSNR;
  if (o.name == "euler" || o.name == "heun" || o.name == "edm-sde") return Spacing::Karras;
  return Spacing::Uniform;
}

int64_t sampler_nfe(const SamplerOptions& o, int64_t T) {
  const int64_t s = sampler_steps(o, T);
  if (o.name == "heun" || o.name == "edm-sde") return 2 * s - 1;
  if (o.name == "pc") return pc_nfe(s, o.corrector_steps);
  return s;
}

bool sampler_uses_noise(const SamplerOptions& o) {
  return o.name == "ddpm" || o.name == "vp-sde" || o.name == "pc" || (o.name == "ddim" && o.eta > 0) ||
         (o.name == "edm-sde" && o.s_churn > 0 && o.s_noise > 0);
}

torch::Tensor run_sampler(const Schedule& schedule, const EpsModel& model, const torch::Tensor& x_T,
                          const NoiseFn& noise, const SamplerOptions& o) {
  check_sampler_options(o, schedule.T);
  const int64_t steps = sampler_steps(o, schedule.T);
  const Spacing spacing = sampler_spacing(o);
  if (o.name == "ddpm") {
    DDPMSamplerOptions d;
    d.steps = steps;
    d.spacing = spacing;
    d.variance = o.variance;
    d.clip_x0 = o.clip_x0;
    d.on_step = o.on_step;
    return ddpm_sample(schedule, model, x_T, noise, d);
  }
  if (o.name == "ddim") {
    DDIMOptions d;
    d.steps = steps;
    d.eta = o.eta;
    d.spacing = spacing;
    d.clip_x0 = o.clip_x0;
    d.on_step = o.on_step;
    return ddim_sample(schedule, model, x_T, noise, d);
  }
  if (o.name == "dpm++2m" || o.name == "dpm++3m") {
    DPMSolverOptions d;
    d.steps = steps;
    d.order = o.name == "dpm++2m" ? 2 : 3;
    d.spacing = spacing;
    d.clip_x0 = o.clip_x0;
    d.on_step = o.on_step;
    return dpm_solver_pp_sample(schedule, model, x_T, d);
  }
  if (o.name == "edm-sde") return edm_sde_sample(schedule, model, x_T, noise, edm_sde_options(o, steps, spacing));
  if (o.name == "pc") return pc_sample(schedule, model, x_T, noise, pc_options(o, steps, spacing));
  if (o.name == "vp-sde") {
    VPSDEOptions v;
    v.steps = steps;
    v.spacing = spacing;
    v.clip_x0 = o.clip_x0;
    v.on_step = o.on_step;
    return vp_sde_sample(schedule, model, x_T, noise, v);
  }
  KarrasOptions k;
  k.steps = steps;
  k.spacing = spacing;
  k.rho = o.rho;
  k.clip_x0 = o.clip_x0;
  k.on_step = o.on_step;
  return o.name == "euler" ? euler_sample(schedule, model, x_T, k) : heun_sample(schedule, model, x_T, k);
}

}  // namespace ddpm
