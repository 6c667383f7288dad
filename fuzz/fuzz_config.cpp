// fuzz_config.cpp — libFuzzer target: the TOML config reader and the checkpoint's JSON config (config.h).
// First byte even: the rest is a TOML document; odd: a JSON config as stored in checkpoint metadata. A config
// that is accepted and validates must print to TOML and JSON that read back to the same config.
#include "ddpm/util/config.h"

#include <cstdlib>
#include <exception>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  ddpm::Config cfg;
  try {
    if (data[0] % 2 == 0) ddpm::apply_toml_string(cfg, text, "fuzz.toml");
    else cfg = ddpm::config_from_json(nlohmann::json::parse(text));
    ddpm::validate(cfg);
  } catch (const std::exception&) {  // runtime_error from our checks, nlohmann/toml++ errors: all one-line errors
    return 0;
  }
  ddpm::Config again;
  ddpm::apply_toml_string(again, ddpm::to_toml(cfg), "round trip");  // must not throw
  if (ddpm::to_json(again) != ddpm::to_json(cfg)) std::abort();
  if (ddpm::to_json(ddpm::config_from_json(ddpm::to_json(cfg))) != ddpm::to_json(cfg)) std::abort();
  return 0;
}
