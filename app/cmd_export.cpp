// cmd_export.cpp — `ddpm export`: a weights-only copy of a checkpoint (EMA weights + config), as shipped in models/.
#include "commands.h"

#include "ddpm/io/checkpoint.h"

#include <iostream>
#include <memory>

namespace ddpm::app {

Command add_export(CLI::App& root) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto* c = root.add_subcommand("export", "Write a weights-only file (EMA weights and config) from a checkpoint");
  c->add_option("--checkpoint", *in, "Training checkpoint")->required();
  c->add_option("--out", *out, "Weights file to write (.safetensors)")->required();
  auto run = [=]() -> int {
    ensure_writable_parent(*out, "--out");
    auto ck = load_checkpoint(*in);
    const std::string prefix = ck.has("ema.") ? "ema." : "model.";
    SafeTensors st;
    for (const auto& [name, t] : ck.st.tensors)
      if (name.compare(0, prefix.size(), prefix) == 0) st.tensors.emplace_back("ema." + name.substr(prefix.size()), t);
    st.metadata = checkpoint_metadata(ck.config, ck.step);
    safetensors_save(*out, st);
    std::cerr << "wrote " << *out << " (" << st.tensors.size() << " tensors, " << prefix << " weights, step " << ck.step << ")\n";
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
