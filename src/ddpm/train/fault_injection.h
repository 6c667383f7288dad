// fault_injection.h — a TESTING AID, not a feature: lets the test scripts poison training batches through the
// CLI, to prove the non-finite guard end to end. Not listed in --help.
//
//   DDPM_TEST_NAN_STEPS="A-B[,C-D...]"   fill the images of global steps A..B (inclusive, 0-based) with NaN
//
// Without the variable nothing is installed and training is unaffected.
#pragma once

#include "ddpm/train/trainer.h"

#include <string>
#include <utility>
#include <vector>

namespace ddpm {

// Parses "A-B,C,D-E" into inclusive ranges; throws on malformed text.
std::vector<std::pair<int64_t, int64_t>> parse_step_ranges(const std::string& text);
// Installs a batch hook on `trainer` from DDPM_TEST_NAN_STEPS, if set (with a note on stderr).
void install_test_faults(Trainer& trainer);

}  // namespace ddpm
