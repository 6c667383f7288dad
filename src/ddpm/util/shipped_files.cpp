// shipped_files.cpp — see shipped_files.h.
#include "ddpm/util/shipped_files.h"

#include <filesystem>
#include <system_error>

namespace ddpm {
namespace fs = std::filesystem;

std::vector<std::string> shipped_dirs(const std::string& sub) {
  std::vector<std::string> dirs;
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back((exe.parent_path().parent_path() / "share" / "ddpm" / sub).string());
    dirs.push_back((exe.parent_path().parent_path() / sub).string());
  }
  return dirs;
}

std::string find_shipped_file(const std::string& sub, const std::string& name) {
  for (const auto& d : shipped_dirs(sub))
    if (fs::is_regular_file(fs::path(d) / name)) return (fs::path(d) / name).string();
  return "";
}

std::string shipped_dirs_list(const std::string& sub) {
  std::string out;
  for (const auto& d : shipped_dirs(sub)) out += (out.empty() ? "" : ", ") + d;
  return out;
}

}  // namespace ddpm
