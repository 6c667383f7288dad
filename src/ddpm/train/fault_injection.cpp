// fault_injection.cpp — see fault_injection.h.
#include "ddpm/train/fault_injection.h"

#include <cstdlib>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ddpm {

std::vector<std::pair<int64_t, int64_t>> parse_step_ranges(const std::string& text) {
  std::vector<std::pair<int64_t, int64_t>> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      const auto dash = item.find('-');
      const int64_t a = std::stoll(item.substr(0, dash));
      const int64_t b = dash == std::string::npos ? a : std::stoll(item.substr(dash + 1));
      if (a < 0 || b < a) throw std::invalid_argument("range");
      out.emplace_back(a, b);
    } catch (const std::exception&) {
      throw std::runtime_error("DDPM_TEST_NAN_STEPS: malformed step range '" + item + "' (expected A-B,C,...)");
    }
  }
  return out;
}

void install_test_faults(Trainer& trainer) {
  const char* env = std::getenv("DDPM_TEST_NAN_STEPS");
  if (!env || !*env) return;
  auto ranges = parse_step_ranges(env);
  std::cerr << "ddpm: testing aid DDPM_TEST_NAN_STEPS=" << env << ": poisoning those steps' batches with NaN\n";
  trainer.batch_hook = [ranges](int64_t step, Trainer::Batch& batch) {
    for (const auto& [a, b] : ranges)
      if (step >= a && step <= b) batch.x0.fill_(std::numeric_limits<float>::quiet_NaN());
  };
}

}  // namespace ddpm
