// cmd_info.cpp — `ddpm info`: JSON about a checkpoint or a preset (parameters, config, step, FLOPs).
#include "commands.h"

#include "ddpm/checkpoint.h"

#include <iostream>
#include <memory>

namespace ddpm::app {

Command add_info(CLI::App& root) {
  auto checkpoint = std::make_shared<std::string>();
  auto preset = std::make_shared<std::string>();
  auto* c = root.add_subcommand("info", "Print JSON about a checkpoint or a preset");
  auto* oc = c->add_option("--checkpoint", *checkpoint, "Checkpoint or weights file");
  auto* op = c->add_option("--preset", *preset, "Model preset name");
  oc->excludes(op);
  c->require_option(1);
  auto run = [=]() -> int {
    nlohmann::json j;
    Config cfg;
    if (!checkpoint->empty()) {
      auto ck = load_checkpoint(*checkpoint);
      cfg = ck.config;
      j["checkpoint"] = *checkpoint;
      j["step"] = ck.step;
      j["has_ema"] = ck.has("ema.");
      j["has_optimizer"] = ck.has("optim.");
      j["tensors"] = ck.st.tensors.size();
    } else {
      cfg.model = preset_model(*preset);
      cfg.preset = *preset;
    }
    UNet net(cfg.model);
    j["preset"] = cfg.preset;
    j["parameters"] = count_parameters(*net);
    j["forward_gflops_per_image"] = net->forward_flops_per_image() / 1e9;
    j["config"] = checkpoint->empty() ? nlohmann::json{{"model", to_json(cfg.model)}} : to_json(cfg);
    std::cout << j.dump(2) << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
