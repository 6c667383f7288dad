// job.cpp — see job.h. The checks mirror the CLI verbs' (app/cmd_sample.cpp, app/cmd_restore.cpp), with the
// messages naming JSON fields instead of flags.
#include "ddpm/serve/job.h"

#include "ddpm/restoration/denoise.h"
#include "ddpm/restoration/interpolate.h"
#include "ddpm/restoration/inputs.h"
#include "ddpm/restoration/masks.h"
#include "ddpm/restoration/sdedit.h"
#include "ddpm/restoration/verbs.h"
#include "ddpm/samplers/registry.h"
#include "ddpm/serve/base64.h"

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace ddpm::serve {

namespace {

const std::vector<std::string> kTasks = {"sample", "inpaint", "upscale", "denoise", "edit", "interpolate"};

// Which fields each task takes (beyond model, task).
const std::map<std::string, std::set<std::string>>& task_fields() {
  static const std::set<std::string> common = {"model", "task", "num", "seed", "class", "guidance", "preview_every"};
  auto with = [&](std::set<std::string> s) {
    s.insert(common.begin(), common.end());
    return s;
  };
  static const std::map<std::string, std::set<std::string>> m = {
      {"sample", with({"sampler", "steps", "eta", "spacing", "rho", "variance", "clip"})},
      {"inpaint", with({"image", "data_index", "mask", "mask_shape", "method", "steps", "jump_length", "resample",
                        "eta", "variance"})},
      {"upscale", with({"image", "data_index", "factor", "method", "steps", "eta", "variance"})},
      {"denoise", with({"image", "data_index", "sigma", "add_noise", "steps", "variance"})},
      {"edit", with({"image", "data_index", "mask", "strength", "steps", "variance"})},
      {"interpolate", with({"image", "image_b", "frames", "steps"})},
  };
  return m;
}

std::string num_str(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

RequestError field_error(const std::string& k, const std::string& why) {
  return RequestError("field '" + k + "': " + why);
}

// Typed access to the request's fields.
struct Fields {
  const nlohmann::json& j;
  bool has(const std::string& k) const { return j.contains(k) && !j.at(k).is_null(); }
  int64_t integer(const std::string& k, int64_t lo, int64_t hi) const {
    const auto& v = j.at(k);
    int64_t x = 0;
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw field_error(k, "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      x = v.get<int64_t>();
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)) throw field_error(k, "expected an integer");
      x = static_cast<int64_t>(d);
    } else {
      throw field_error(k, "expected an integer, got " + std::string(v.type_name()));
    }
    if (x < lo || x > hi)
      throw field_error(k, std::to_string(x) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  uint64_t seed(const std::string& k) const {
    const auto& v = j.at(k);
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) throw field_error(k, "expected an unsigned integer, got " + std::to_string(v.get<int64_t>()));
    throw field_error(k, "expected an unsigned integer, got " + std::string(v.type_name()));
  }
  double number(const std::string& k) const {
    const auto& v = j.at(k);
    if (!v.is_number()) throw field_error(k, "expected a number, got " + std::string(v.type_name()));
    const double d = v.get<double>();
    if (!std::isfinite(d)) throw field_error(k, "expected a finite number");
    return d;
  }
  std::string str(const std::string& k, size_t max_len = 256) const {
    const auto& v = j.at(k);
    if (!v.is_string()) throw field_error(k, "expected a string, got " + std::string(v.type_name()));
    auto s = v.get<std::string>();
    if (s.size() > max_len) throw field_error(k, "longer than " + std::to_string(max_len) + " characters");
    return s;
  }
  std::string one_of(const std::string& k, const std::vector<std::string>& allowed) const {
    auto s = str(k);
    for (const auto& a : allowed)
      if (s == a) return s;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
    throw field_error(k, "'" + s.substr(0, 40) + "' is not one of " + list);
  }
  bool boolean(const std::string& k) const {
    const auto& v = j.at(k);
    if (!v.is_boolean()) throw field_error(k, "expected true or false, got " + std::string(v.type_name()));
    return v.get<bool>();
  }
  // A base64 PNG/JPEG (plain or a data URL) -> its bytes.
  std::string image_bytes(const std::string& k) const {
    auto s = str(k, std::numeric_limits<size_t>::max());
    try {
      return base64_decode(strip_data_url(s));
    } catch (const std::invalid_argument& e) {
      throw field_error(k, e.what());
    }
  }
};

}  // namespace

int64_t JobSpec::total_images() const {
  if (task == "interpolate") return frames;
  return num;
}

JobSpec parse_job_request(const nlohmann::json& body, const std::vector<const ServedModel*>& models,
                          const DataSource* data, const RequestLimits& limits) {
  if (!body.is_object()) throw RequestError("the request body must be a JSON object");
  if (models.empty()) throw RequestError("no model is loaded");
  const Fields f{body};
  JobSpec s;
  s.task = f.has("task") ? f.one_of("task", kTasks) : "sample";
  const auto& allowed = task_fields().at(s.task);
  for (const auto& [k, v] : body.items()) {
    if (allowed.count(k)) continue;
    bool known = false;
    for (const auto& [t, fs] : task_fields()) known = known || fs.count(k);
    if (!known) throw RequestError("unknown field '" + k.substr(0, 64) + "'");
    throw field_error(k, "does not apply to task '" + s.task + "'");
  }
  // The model.
  const ServedModel* m = models.front();
  if (f.has("model")) {
    const auto id = f.str("model");
    m = nullptr;
    for (auto* c : models)
      if (c->id == id) m = c;
    if (!m) {
      std::string list;
      for (auto* c : models) list += (list.empty() ? "" : ", ") + c->id;
      throw field_error("model", "no model '" + id.substr(0, 64) + "' (served: " + list + ")");
    }
  }
  s.model = m->id;
  const int64_t T = m->timesteps(), C = m->channels(), S = m->size(), K = m->classes();
  const int64_t max_steps = std::min(limits.max_steps, T);

  // Common fields.
  if (s.task == "sample") s.num = 64;
  if (f.has("num")) s.num = f.integer("num", 1, limits.max_num);
  else if (s.task == "sample") s.num = std::min<int64_t>(64, limits.max_num);
  if (f.has("seed")) s.seed = f.seed("seed");
  if (f.has("class")) {
    if (K == 0) throw field_error("class", "model '" + m->id + "' is unconditional (num_classes = 0)");
    if (s.task == "sample" && body.at("class").is_string() && body.at("class").get<std::string>() == "all") {
      s.class_all = true;
      if (s.num % K != 0)
        throw field_error("num", std::to_string(s.num) + " with class 'all' must be a multiple of the " +
                                     std::to_string(K) + " classes");
    } else {
      s.klass = f.integer("class", 0, K - 1);
    }
  }
  if (f.has("guidance")) {
    s.guidance = f.number("guidance");
    if (s.guidance < 0) throw field_error("guidance", "must be >= 0");
    if (s.guidance != 0 && K == 0)
      throw field_error("guidance", "needs a class-conditional model; '" + m->id + "' has num_classes = 0");
  }
  if (f.has("steps")) s.steps = f.integer("steps", 0, max_steps);

  if (s.task == "sample") {
    if (f.has("sampler")) s.sampler = f.one_of("sampler", sampler_names());
    if (f.has("eta")) {
      s.eta = f.number("eta");
      if (s.eta < 0) throw field_error("eta", "must be >= 0");
    }
    if (f.has("spacing")) s.spacing = f.one_of("spacing", {"uniform", "trailing", "quadratic", "logsnr", "karras"});
    if (f.has("rho")) {
      s.rho = f.number("rho");
      s.rho_given = true;
      if (!(s.rho > 0)) throw field_error("rho", "must be > 0");
    }
    if (f.has("variance")) s.variance = f.one_of("variance", {"fixed_large", "fixed_small"});
    if (f.has("clip")) s.clip = f.boolean("clip");
    SamplerOptions o;
    o.name = s.sampler;
    o.steps = s.steps;
    o.eta = s.eta;
    if (!s.spacing.empty()) o.spacing = parse_spacing(s.spacing);
    if (s.rho_given && sampler_spacing(o) != Spacing::Karras)
      throw field_error("rho", "applies to the karras spacing only (here: " + to_string(sampler_spacing(o)) + ")");
    if (f.has("eta") && s.sampler != "ddim") throw field_error("eta", "applies to sampler ddim only");
    if (f.has("variance") && s.sampler != "ddpm") throw field_error("variance", "applies to sampler ddpm only");
    try {
      check_sampler_options(o, T);
    } catch (const std::exception& e) {
      throw field_error("steps", e.what());
    }
    if (sampler_steps(o, T) > max_steps)
      throw field_error("steps", "the default of " + s.sampler + " (" + std::to_string(sampler_steps(o, T)) +
                                     ") is above the server's limit " + std::to_string(max_steps) + "; give steps");
  } else {
    // The input image: an upload or an image of --data.
    const bool low_res = s.task == "upscale";
    if (s.task == "upscale") {
      if (!f.has("factor")) throw field_error("factor", "required for task upscale");
      s.factor = f.integer("factor", 2, S);
      if (S % s.factor != 0)
        throw field_error("factor", std::to_string(s.factor) + " does not divide the model's image size " +
                                        std::to_string(S));
    }
    if (f.has("data_index")) {
      if (s.task == "interpolate") throw field_error("data_index", "does not apply to task interpolate");
      if (f.has("image")) throw field_error("data_index", "give either image or data_index, not both");
      if (!data) throw field_error("data_index", "the server has no --data");
      s.data_index = f.integer("data_index", 0, data->images.size(0) - 1);
      const auto img = data->images[s.data_index];
      if (img.size(0) != C || img.size(1) != S || img.size(2) != S)
        throw field_error("data_index", "the images of --data '" + data->spec + "' do not fit model '" + m->id + "'");
      s.image = img.contiguous();
    } else {
      if (!f.has("image")) throw field_error("image", "required for task " + s.task + " (or data_index)");
      const int64_t side = low_res ? S / s.factor : S;
      s.image = input_image_from_bytes(f.image_bytes("image"), "field 'image'", C, side, side,
                                       low_res ? "the low-resolution input of factor " + std::to_string(s.factor)
                                               : "the model's image size");
    }
    if (f.has("variance")) s.variance = f.one_of("variance", {"fixed_large", "fixed_small"});
    if (f.has("eta")) {
      s.eta = f.number("eta");
      if (!(s.eta >= 0 && s.eta <= 1)) throw field_error("eta", num_str(s.eta) + ": must be in [0, 1]");
    }
  }

  if (s.task == "inpaint") {
    s.method = f.has("method") ? f.one_of("method", {"repaint", "replace", "ddnm"}) : "repaint";
    s.jump_length = RePaintOptions{}.jump_length;
    s.resample = RePaintOptions{}.resample;
    if (f.has("jump_length")) s.jump_length = f.integer("jump_length", 1, 1000);
    if (f.has("resample")) s.resample = f.integer("resample", 1, 100);
    if ((f.has("jump_length") || f.has("resample")) && s.method != "repaint")
      throw field_error(f.has("jump_length") ? "jump_length" : "resample", "applies to method repaint only");
    if (f.has("eta") && s.method != "ddnm") throw field_error("eta", "applies to method ddnm only");
    if (f.has("variance") && s.method == "ddnm") throw field_error("variance", "applies to method repaint|replace only");
    if (!f.has("eta")) s.eta = DDNMOptions{}.eta;
    if (f.has("mask") && f.has("mask_shape")) throw field_error("mask", "give either mask or mask_shape, not both");
    if (f.has("mask")) {
      s.keep = mask_from_bytes(f.image_bytes("mask"), S, S, "field 'mask'");
      s.mask_desc = "mask.png";
    } else if (f.has("mask_shape")) {
      s.mask_desc = f.str("mask_shape", 64);
      try {
        s.keep = mask_from_shape(s.mask_desc, S, S, s.seed);
      } catch (const std::exception& e) {
        throw field_error("mask_shape", e.what());
      }
    } else {
      throw field_error("mask", "required for task inpaint (or mask_shape)");
    }
    InpaintParams p;
    p.method = s.method;
    p.steps = s.steps;
    p.jump_length = s.jump_length;
    p.resample = s.resample;
    if (inpaint_steps(p) > max_steps) throw field_error("steps", "above the server's limit " + std::to_string(max_steps));
  } else if (s.task == "upscale") {
    s.method = f.has("method") ? f.one_of("method", {"ddnm", "ilvr"}) : "ddnm";
    if (f.has("eta") && s.method != "ddnm") throw field_error("eta", "applies to method ddnm only");
    if (f.has("variance") && s.method != "ilvr") throw field_error("variance", "applies to method ilvr only");
    if (!f.has("eta")) s.eta = DDNMOptions{}.eta;
  } else if (s.task == "denoise") {
    const bool truth = s.data_index >= 0;
    const std::string k = truth ? "add_noise" : "sigma";
    if (f.has(truth ? "sigma" : "add_noise"))
      throw field_error(truth ? "sigma" : "add_noise", truth ? "with data_index give add_noise (the noise to add)"
                                                             : "applies with data_index only (an upload gives sigma)");
    if (!f.has(k)) throw field_error(k, truth ? "required with data_index: the std of the noise to add, in [0, 1] pixel units"
                                             : "required: the std of the image's noise in [0, 1] pixel units");
    s.sigma = f.number(k);
    if (!(s.sigma > 0)) throw field_error(k, num_str(s.sigma) + ": the noise std must be > 0");
    try {
      denoise_start(*m->schedule, 2.0 * s.sigma);
    } catch (const std::exception& e) {
      throw field_error(k, num_str(s.sigma) + ": " + e.what());
    }
  } else if (s.task == "edit") {
    if (!f.has("strength")) throw field_error("strength", "required for task edit, in (0, 1]");
    s.strength = f.number("strength");
    try {
      sdedit_start(s.strength, T);
    } catch (const std::exception& e) {
      throw field_error("strength", num_str(s.strength) + ": " + e.what());
    }
    if (f.has("mask")) {
      s.keep = mask_from_bytes(f.image_bytes("mask"), S, S, "field 'mask'");
      s.mask_desc = "mask.png";
    }
  } else if (s.task == "interpolate") {
    if (f.has("num") && s.num != 1)
      throw field_error("num", "interpolate makes one deterministic sequence (use frames for more images)");
    if (!f.has("image_b")) throw field_error("image_b", "required for task interpolate (the last image)");
    s.image_b = input_image_from_bytes(f.image_bytes("image_b"), "field 'image_b'", C, S, S, "the model's image size");
    s.frames = InterpolateOptions{}.frames;
    if (f.has("frames")) s.frames = f.integer("frames", 2, limits.max_frames);
  }

  // Previews: about 20 per job by default.
  if (f.has("preview_every")) s.preview_every = f.integer("preview_every", 0, 1000000);
  else s.preview_every = -1;  // resolved by the runner from the job's model calls

  // The request as run: what was given plus the defaults.
  nlohmann::json r = body;
  r["task"] = s.task;
  r["model"] = s.model;
  r["num"] = s.num;
  r["seed"] = s.seed;
  if (s.task == "sample") {
    r["sampler"] = s.sampler;
    SamplerOptions o;
    o.name = s.sampler;
    o.steps = s.steps;
    r["steps"] = sampler_steps(o, T);
  }
  if (!s.method.empty()) r["method"] = s.method;
  for (const char* k : {"image", "image_b", "mask"})
    if (r.contains(k)) r[k] = "(" + std::to_string(r[k].get<std::string>().size()) + " characters of base64)";
  s.request = r;
  return s;
}

std::string command_line(const JobSpec& s, const ServedModel& m, const DataSource* data) {
  std::ostringstream c;
  c << "ddpm " << s.task << " --checkpoint " << m.path;
  auto add = [&](const std::string& flag, const std::string& value) { c << " --" << flag << " " << value; };
  const bool given_steps = s.request.contains("steps");
  if (s.task == "sample") {
    add("num", std::to_string(s.num));
    add("seed", std::to_string(s.seed));
    add("sampler", s.sampler);
    if (given_steps) add("steps", std::to_string(s.request["steps"].get<int64_t>()));
    if (s.request.contains("eta") && s.sampler == "ddim") add("eta", num_str(s.eta));
    if (!s.spacing.empty()) add("spacing", s.spacing);
    if (s.rho_given) add("rho", num_str(s.rho));
    if (!s.variance.empty()) add("variance", s.variance);
    if (!s.clip) c << " --no-clip";
    if (s.class_all) add("class", "all");
  } else {
    if (s.task == "interpolate") {
      add("a", "input.png");
      add("b", "image_b.png");
      add("frames", std::to_string(s.frames));
    } else if (s.data_index >= 0) {
      add("data", data ? data->spec : "DATA");
      add("index", std::to_string(s.data_index));
    } else {
      add("image", "input.png");
    }
    if (s.task != "interpolate") {
      add("num", std::to_string(s.num));
    }
    add("seed", std::to_string(s.seed));
    if (!s.method.empty()) add("method", s.method);
    if (s.steps > 0) add("steps", std::to_string(s.steps));
    if (s.task == "inpaint") {
      if (s.mask_desc == "mask.png") add("mask", "mask.png");
      else add("mask-shape", s.mask_desc);
      if (s.request.contains("jump_length")) add("jump-length", std::to_string(s.jump_length));
      if (s.request.contains("resample")) add("resample", std::to_string(s.resample));
    }
    if (s.task == "upscale") add("factor", std::to_string(s.factor));
    if (s.task == "denoise") add(s.data_index >= 0 ? "add-noise" : "sigma", num_str(s.sigma));
    if (s.task == "edit") {
      add("strength", num_str(s.strength));
      if (s.keep.defined()) add("mask", "mask.png");
    }
    if (s.request.contains("eta")) add("eta", num_str(s.eta));
    if (!s.variance.empty()) add("variance", s.variance);
  }
  if (s.klass >= 0) add("class", std::to_string(s.klass));
  if (s.guidance != 0) add("guidance", num_str(s.guidance));
  return c.str();
}

}  // namespace ddpm::serve
