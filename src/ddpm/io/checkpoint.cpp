// checkpoint.cpp — see checkpoint.h.
#include "ddpm/io/checkpoint.h"

#include <stdexcept>

namespace ddpm {

bool Checkpoint::has(const std::string& prefix) const {
  for (const auto& [n, t] : st.tensors)
    if (n.compare(0, prefix.size(), prefix) == 0) return true;
  return false;
}

std::map<std::string, std::string> checkpoint_metadata(const Config& cfg, int64_t step) {
  return {{"format", kCheckpointFormat},
          {"format_version", kCheckpointVersion},
          {"step", std::to_string(step)},
          {"config", to_json(cfg).dump()}};
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint ck;
  ck.path = path;
  ck.st = safetensors_load(path);
  const auto& md = ck.st.metadata;
  auto fmt = md.find("format");
  if (fmt == md.end() || fmt->second != kCheckpointFormat)
    throw std::runtime_error(path + ": not a ddpm checkpoint (safetensors metadata lacks format=ddpm.cpp)");
  auto ver = md.find("format_version");
  if (ver == md.end() || ver->second != kCheckpointVersion)
    throw std::runtime_error(path + ": unsupported ddpm checkpoint version");
  try {
    ck.step = std::stoll(md.at("step"));
    ck.config = config_from_json(nlohmann::json::parse(md.at("config")));
    validate(ck.config);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": corrupt checkpoint metadata (" + e.what() + ")");
  }
  if (!ck.has("model.") && !ck.has("ema.")) throw std::runtime_error(path + ": checkpoint holds no weights");
  return ck;
}

void add_module_state(SafeTensors& st, torch::nn::Module& m, const std::string& prefix) {
  for (const auto& p : m.named_parameters()) st.tensors.emplace_back(prefix + p.key(), p.value().detach());
  for (const auto& b : m.named_buffers()) st.tensors.emplace_back(prefix + b.key(), b.value().detach());
}

void load_module_state(torch::nn::Module& m, const SafeTensors& st, const std::string& prefix, const std::string& source) {
  torch::NoGradGuard ng;
  auto copy_into = [&](const std::string& name, torch::Tensor dst) {
    const torch::Tensor* src = st.find(prefix + name);
    if (!src) throw std::runtime_error(source + ": checkpoint lacks tensor '" + prefix + name + "'");
    if (src->sizes() != dst.sizes())
      throw std::runtime_error(source + ": tensor '" + prefix + name + "' has shape " + c10::str(src->sizes()) +
                               ", the model expects " + c10::str(dst.sizes()));
    dst.copy_(*src);
  };
  for (auto& p : m.named_parameters()) copy_into(p.key(), p.value());
  for (auto& b : m.named_buffers()) copy_into(b.key(), b.value());
}

void check_finite(const SafeTensors& st, const std::string& path) {
  for (const auto& [name, t] : st.tensors)
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw std::runtime_error("refusing to write " + path + ": tensor '" + name +
                               "' holds NaN or Inf values (the previous checkpoint is kept)");
}

Backbone load_sampling_model(const Checkpoint& ck, torch::Device device, Precision precision, bool raw) {
  if (raw && !ck.has("model."))
    throw std::runtime_error(ck.path + ": no training weights (model.*) in this file, only EMA weights (a weights-only "
                             "export?); --weights raw needs a run checkpoint");
  Backbone net = make_backbone(ck.config.model);
  load_module_state(*net, ck.st, !raw && ck.has("ema.") ? "ema." : "model.", ck.path);
  net->to(device);
  net->set_compute(compute_mode_for(precision, device));
  net->eval();
  return net;
}

}  // namespace ddpm
