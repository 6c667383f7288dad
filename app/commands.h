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
Command add_classifier(CLI::App& root);
Command add_eval(CLI::App& root);
Command add_nll(CLI::App& root);
// The restoration verbs (cmd_restore.cpp).
Command add_inpaint(CLI::App& root);
Command add_upscale(CLI::App& root);
Command add_denoise(CLI::App& root);
Command add_edit(CLI::App& root);
Command add_interpolate(CLI::App& root);
Command add_serve(CLI::App& root);

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
// $DDPM_CACHE_DIR, else $XDG_CACHE_HOME/ddpm, else ~/.cache/ddpm: reference statistics, the Inception file.
std::string default_cache_dir();

// --precision fp32|bf16 and --force-precision (nn/precision.h), the same on every command that runs the network.
CLI::Option* add_precision_options(CLI::App* c, std::string& precision, bool& force);

// The held-out split of a dataset spec: BASE@test for the IDX and CIFAR-10 readers. An image folder has none:
// throws telling the user to give one with `flag`.
std::string test_split_of(const std::string& spec, const std::string& flag);

// Feature networks for `eval` and `train --eval-every` (features.h).
constexpr const char* kFmnistClassifierName = "fmnist-classifier";  // models/fmnist-classifier.safetensors
constexpr const char* kInceptionName = "inception";
constexpr const char* kInceptionFile = "inception-2015-12-05.pt";
constexpr const char* kInceptionUrl =
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt";
// NAME|FILE -> a file: a shipped model's name (fmnist-classifier), "inception" ($DDPM_INCEPTION or
// default_cache_dir()/inception-2015-12-05.pt), or a path. Throws naming `flag`, and for Inception the URL.
std::string resolve_features(const std::string& arg, const std::string& flag);
// The default reference-statistics cache of (reference spec, feature file, max images): one file per triple in
// default_cache_dir() (its key inside still decides whether it is used: features.h).
std::string default_ref_cache(const std::string& ref, const std::string& features_path, int64_t max_ref);
// The default feature network for images of this shape: the classifier for 1×28×28, else Inception.
std::string default_features_for(int64_t channels, int64_t height, int64_t width);

}  // namespace ddpm::app
