// util.cpp — helpers shared by the sub-commands.
#include "commands.h"

#include "ddpm/data/data.h"
#include "ddpm/util/shipped_files.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace ddpm::app {
namespace fs = std::filesystem;

namespace {
std::vector<std::string> g_args;
}

void set_program_args(int argc, char** argv) { g_args.assign(argv, argv + argc); }
const std::vector<std::string>& program_args() { return g_args; }

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

void ensure_writable_dir(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(what + " '" + dir + "': cannot create directory (" + ec.message() + ")");
  if (!fs::is_directory(dir)) throw std::runtime_error(what + " '" + dir + "': not a directory");
  if (::access(dir.c_str(), W_OK) != 0) throw std::runtime_error(what + " '" + dir + "': directory is not writable");
}

void ensure_writable_parent(const std::string& file, const std::string& what) {
  auto parent = fs::path(file).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent))
    throw std::runtime_error(what + " '" + file + "': directory " + parent.string() + " does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    throw std::runtime_error(what + " '" + file + "': directory " + parent.string() + " is not writable");
  if (fs::is_directory(file)) throw std::runtime_error(what + " '" + file + "': is a directory");
}

std::string resolve_config_file(const std::string& arg) {
  if (fs::exists(arg)) {
    if (fs::is_directory(arg)) throw std::runtime_error("--config '" + arg + "': is a directory");
    return arg;
  }
  const bool bare = arg.find('/') == std::string::npos;
  if (bare) {
    const std::string name = arg.size() > 5 && arg.substr(arg.size() - 5) == ".toml" ? arg : arg + ".toml";
    if (auto found = find_shipped_file("configs", name); !found.empty()) return found;
  }
  throw std::runtime_error("--config '" + arg + "': no such file" +
                           (bare ? ", and no preset config of that name in " + shipped_dirs_list("configs") : std::string()));
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("DDPM_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "ddpm").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "ddpm").string();
  return ".ddpm-cache";
}

std::string resolve_features(const std::string& arg, const std::string& flag) {
  if (arg == kInceptionName) {
    std::string p;
    if (const char* e = std::getenv("DDPM_INCEPTION"); e && *e) p = e;
    else p = (fs::path(default_cache_dir()) / kInceptionFile).string();
    if (!fs::is_regular_file(p))
      throw std::runtime_error(flag + " inception: " + p + " not found; download " + kInceptionUrl +
                               " there (or set DDPM_INCEPTION to the file, or give the file's path)");
    return p;
  }
  if (arg.find('/') == std::string::npos && !fs::exists(arg)) {  // a shipped model's name
    const std::string name = arg.size() > 12 && arg.substr(arg.size() - 12) == ".safetensors" ? arg : arg + ".safetensors";
    if (auto found = find_shipped_file("models", name); !found.empty()) return found;
    throw std::runtime_error(flag + " '" + arg + "': no such file, and no shipped model of that name in " +
                             shipped_dirs_list("models") +
                             " (names: " + kFmnistClassifierName + ", " + kInceptionName + ")");
  }
  if (!fs::is_regular_file(arg)) throw std::runtime_error(flag + " '" + arg + "': no such file");
  return arg;
}

std::string test_split_of(const std::string& spec, const std::string& flag) {
  if (is_image_folder_spec(spec))
    throw std::runtime_error("the data " + spec + " is an image folder, which has no test split: give one with " + flag);
  const auto at = spec.rfind('@');
  return (at == std::string::npos ? spec : spec.substr(0, at)) + "@test";
}

std::string default_features_for(int64_t channels, int64_t height, int64_t width) {
  return channels == 1 && height == 28 && width == 28 ? kFmnistClassifierName : kInceptionName;
}

CLI::Option* add_precision_options(CLI::App* c, std::string& precision, bool& force) {
  auto* o = c->add_option("--precision", precision,
                          "fp32 | bf16: mixed precision (bf16 convolutions and matmuls, fp32 norms, softmax and "
                          "weights); needs native bf16 on a CPU (ddpm --version says)")
                ->check(CLI::IsMember({"fp32", "bf16"}));
  c->add_flag("--force-precision", force, "Run bf16 even where the CPU only emulates it (slower than fp32)");
  return o;
}

}  // namespace ddpm::app
