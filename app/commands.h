// commands.h — each sub-command registers its options on the root CLI11 app and returns the function that
// runs it once parsing succeeded. Commands throw on error; main() is the only catch site.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace ddpm::app {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_train(CLI::App& root);
Command add_sample(CLI::App& root);
Command add_noise(CLI::App& root);
Command add_info(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_export(CLI::App& root);

// Helpers shared by commands.
// The command line as main() received it (what `train --nproc` re-executes in each worker).
void set_program_args(int argc, char** argv);
const std::vector<std::string>& program_args();
bool stderr_is_tty();
// Throws unless `dir` exists (or can be created) and is writable; names the flag in the message.
void ensure_writable_dir(const std::string& dir, const std::string& what);
// --config ARG: an existing file, or a bare preset name looked up in PREFIX/share/ddpm/configs and in the
// checkout's configs/ (relative to the binary). Throws naming both places.
std::string resolve_config_file(const std::string& arg);
// Throws unless the directory that will hold `file` exists and is writable.
void ensure_writable_parent(const std::string& file, const std::string& what);

}  // namespace ddpm::app
