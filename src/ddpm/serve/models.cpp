// models.cpp — see models.h.
#include "ddpm/serve/models.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

namespace ddpm::serve {

namespace fs = std::filesystem;

namespace {
// Fashion-MNIST's label names (Xiao et al. 2017, the dataset's README), index = label.
const std::vector<std::string> kFashionMnistClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::vector<std::string> class_names_for(const std::string& path, const Config& cfg) {
  const int64_t K = cfg.model.num_classes;
  if (K == 0) return {};
  const auto cj = fs::path(path).parent_path() / "classes.json";
  if (fs::exists(cj)) {
    std::ifstream f(cj);
    nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("classes") && j["classes"].is_array() &&
        static_cast<int64_t>(j["classes"].size()) == K) {
      std::vector<std::string> names;
      for (const auto& c : j["classes"])
        if (c.is_string()) names.push_back(c.get<std::string>());
      if (static_cast<int64_t>(names.size()) == K) return names;
    }
  }
  if (cfg.train.data.rfind("fashion-mnist", 0) == 0 && K == 10) return kFashionMnistClasses;
  return {};
}
}  // namespace

nlohmann::json ServedModel::describe() const {
  const auto& c = ck.config;
  return {{"id", id},
          {"path", path},
          {"image_size", size()},
          {"channels", channels()},
          {"classes", classes()},
          {"class_names", class_names},
          {"prediction", c.diffusion.prediction},
          {"schedule", c.diffusion.schedule},
          {"timesteps", timesteps()},
          {"variance", c.diffusion.variance},
          {"parameters", parameters},
          {"step", ck.step},
          {"preset", c.preset}};
}

std::unique_ptr<ServedModel> load_served_model(const std::string& path, torch::Device device, Precision precision) {
  auto m = std::make_unique<ServedModel>();
  m->path = path;
  m->ck = load_checkpoint(path);
  const auto& cfg = m->ck.config;
  m->schedule = std::make_unique<Schedule>(parse_beta_schedule(cfg.diffusion.schedule), cfg.diffusion.timesteps);
  m->device = device;
  m->net = load_sampling_model(m->ck, device, precision);
  m->parameters = count_parameters(**m->net);
  m->class_names = class_names_for(path, cfg);
  m->id = fs::path(path).stem().string();
  return m;
}

void assign_ids(std::vector<std::unique_ptr<ServedModel>>& models) {
  std::map<std::string, int> seen;
  for (auto& m : models) {
    const int n = ++seen[m->id];
    if (n > 1) m->id += "-" + std::to_string(n);
  }
}

}  // namespace ddpm::serve
