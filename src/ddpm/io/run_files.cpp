// run_files.cpp — see run_files.h.
#include "ddpm/io/run_files.h"

#include "ddpm/io/safetensors.h"  // write_file_atomic

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ddpm {
namespace fs = std::filesystem;
namespace {

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string numbered_checkpoint_name(int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "checkpoint-%08lld.safetensors", static_cast<long long>(step));
  return buf;
}

void save_run_checkpoint(const std::string& dir_s, int64_t step, const std::string& bytes, int64_t keep) {
  const fs::path dir(dir_s);
  const fs::path latest = dir / "checkpoint.safetensors";
  if (keep <= 0) {
    write_file_atomic(latest.string(), bytes);
    return;
  }
  const fs::path numbered = dir / numbered_checkpoint_name(step);
  write_file_atomic(numbered.string(), bytes);
  // checkpoint.safetensors becomes a second name of the numbered file: link under a temporary name, then rename
  // over the old one (atomic). Where hard links are not supported, write the bytes a second time.
  const std::string tmp = latest.string() + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  if (::link(numbered.c_str(), tmp.c_str()) == 0) {
    if (::rename(tmp.c_str(), latest.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      throw std::runtime_error(latest.string() + ": rename failed (" + std::strerror(err) + ")");
    }
    fsync_dir(dir);
  } else {
    write_file_atomic(latest.string(), bytes);
  }
  // Prune: keep the `keep` highest step numbers.
  static const std::regex pat(R"(checkpoint-(\d{8,})\.safetensors)");
  std::vector<std::pair<long long, fs::path>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && std::regex_match(name, m, pat)) found.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < found.size(); ++i) fs::remove(found[i].second);
  fsync_dir(dir);
}

int remove_stale_temp_files(const std::string& dir) {
  static const std::regex pat(R"(.+\.tmp\.(\d+))");
  int removed = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || !std::regex_match(name, m, pat)) continue;
    const long long pid = std::stoll(m[1].str());
    if (pid == ::getpid()) continue;
    if (pid > 0 && pid < (1ll << 31) && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      if (fs::remove(e.path(), ec)) ++removed;
    }
  }
  return removed;
}

void trim_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  std::string kept, line;
  bool changed = false;
  while (std::getline(in, line)) {
    bool keep = false;
    if (!in.eof()) {  // a last line without '\n' was cut by a crash
      try {
        const auto j = nlohmann::json::parse(line);
        keep = j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= step;
      } catch (const nlohmann::json::exception&) {
      }
    }
    if (keep) kept += line + "\n";
    else changed = true;
  }
  in.close();
  if (changed) write_file_atomic(path, kept);
}

}  // namespace ddpm
