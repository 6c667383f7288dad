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

}  // namespace ddpm::app
