// main.cpp — the `ddpm` command line. The only place that catches: library errors become one line
// "ddpm: error: ..." and a non-zero exit (2 for usage errors, 1 otherwise, 130 when interrupted).
#include "commands.h"

#include "ddpm/util/runtime.h"
#include "ddpm/util/version.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <iostream>
#include <vector>

namespace {
std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s)
    if (c == '\n') c = ' ';
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  ddpm::tune_allocator();
  ddpm::app::set_program_args(argc, argv);
  ddpm::quiet_library_logs();
  CLI::App root{"ddpm — denoising diffusion probabilistic models in C++ (train, sample, restore, inspect, benchmark)"};
  root.require_subcommand(1);
  root.set_help_all_flag("--help-all", "Print help for every sub-command");
  root.set_version_flag("--version", [] { return ddpm::build_description(); },
                        "Print the version, the LibTorch it was built with and its device support");
  std::vector<ddpm::app::Command> commands = {
      ddpm::app::add_train(root), ddpm::app::add_sample(root), ddpm::app::add_noise(root),
      ddpm::app::add_info(root),  ddpm::app::add_bench(root),  ddpm::app::add_export(root),
      ddpm::app::add_classifier(root), ddpm::app::add_eval(root),  ddpm::app::add_nll(root),
      ddpm::app::add_inpaint(root), ddpm::app::add_upscale(root), ddpm::app::add_denoise(root),
      ddpm::app::add_edit(root),    ddpm::app::add_interpolate(root), ddpm::app::add_serve(root),
  };
  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "ddpm: error: " << one_line(e.what()) << " (see ddpm --help)\n";
    return 2;
  }
  // A worker of a multi-process run says which one it is on its error line (messages from the process group
  // already start with "rank R/W: ").
  std::string rank;
  if (const char* ws = std::getenv("WORLD_SIZE"); ws && std::string(ws) != "1")
    if (const char* r = std::getenv("RANK")) rank = r;
  auto who = [&](const std::string& msg) {
    return rank.empty() || msg.rfind("rank " + rank + "/", 0) == 0 ? std::string() : "[rank " + rank + "] ";
  };
  try {
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
    return 2;
  } catch (const c10::Error& e) {
    const auto msg = one_line(e.what_without_backtrace());
    std::cerr << "ddpm: error: " << who(msg) << msg << "\n";
  } catch (const std::exception& e) {
    const auto msg = one_line(e.what());
    std::cerr << "ddpm: error: " << who(msg) << msg << "\n";
  }
  return 1;
}
