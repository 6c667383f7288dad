// util.cpp — helpers shared by the sub-commands.
#include "commands.h"

#include <unistd.h>

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
  // A bare name: the preset configs installed next to the binary (cmake --install: PREFIX/bin/ddpm and
  // PREFIX/share/ddpm/configs), or those of the source tree for a binary in BUILD/ of a checkout.
  std::vector<fs::path> dirs;
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path().parent_path() / "share" / "ddpm" / "configs");
    dirs.push_back(exe.parent_path().parent_path() / "configs");
  }
  const bool bare = arg.find('/') == std::string::npos;
  if (bare) {
    const std::string name = arg.size() > 5 && arg.substr(arg.size() - 5) == ".toml" ? arg : arg + ".toml";
    for (const auto& d : dirs)
      if (fs::is_regular_file(d / name)) return (d / name).string();
  }
  std::string where;
  for (const auto& d : dirs) where += (where.empty() ? "" : ", ") + d.string();
  throw std::runtime_error("--config '" + arg + "': no such file" +
                           (bare ? std::string(", and no preset config of that name in ") + where : std::string()));
}

}  // namespace ddpm::app
