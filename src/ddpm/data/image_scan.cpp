// image_scan.cpp — see image_scan.h: the recursive listing of an image folder. No decoding, no cache. No LibTorch.
#include "ddpm/data/image_scan.h"

#include "ddpm/data/image_folder_detail.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace ddpm::image_folder_detail {
namespace fs = std::filesystem;
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void walk(const fs::path& abs, const std::string& rel, std::vector<FileInfo>& out) {
  std::error_code ec;
  fs::directory_iterator it(abs, ec), end;
  if (ec) throw std::runtime_error(abs.string() + ": cannot list folder (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(abs.string() + ": cannot list folder (" + ec.message() + ")");
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden
    const std::string r = rel.empty() ? name : rel + "/" + name;
    std::error_code sec;
    if (fs::is_directory(it->symlink_status(sec))) {
      walk(it->path(), r, out);
      continue;
    }
    if (fs::is_symlink(it->symlink_status(sec)) && fs::is_directory(it->status(sec))) continue;  // not followed
    if (!has_image_ext(name)) continue;
    FileInfo f;
    f.rel = r;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) == 0) {
      f.bytes = static_cast<uint64_t>(st.st_size);
      f.mtime = mtime_ns(st);
    }
    out.push_back(std::move(f));
  }
}

}  // namespace

bool has_image_ext(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string ext = lower(name.substr(dot));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::string fmt_mtime(int64_t ns) {
  char buf[48];
  const int64_t s = ns / 1000000000, f = ns % 1000000000;
  std::snprintf(buf, sizeof(buf), "%lld.%09lld", static_cast<long long>(s), static_cast<long long>(f < 0 ? -f : f));
  return buf;
}

Scan scan_dir(const std::string& dir, bool labels) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (!fs::exists(st)) throw std::runtime_error(dir + ": no such folder");
  if (!fs::is_directory(st)) throw std::runtime_error(dir + ": not a folder");
  Scan s;
  walk(dir, "", s.files);
  std::sort(s.files.begin(), s.files.end(), [](const FileInfo& a, const FileInfo& b) { return a.rel < b.rel; });
  if (s.files.empty()) throw std::runtime_error(dir + ": no PNG or JPEG files found (searched recursively)");
  if (!labels) return s;
  std::vector<std::string> cls;
  for (const auto& f : s.files) {
    const auto slash = f.rel.find('/');
    if (slash == std::string::npos)
      throw std::runtime_error(join(dir, f.rel) + ": not in a class sub-folder (labels come from the first-level folder names)");
    cls.push_back(f.rel.substr(0, slash));
  }
  s.classes = cls;
  std::sort(s.classes.begin(), s.classes.end());
  s.classes.erase(std::unique(s.classes.begin(), s.classes.end()), s.classes.end());
  if (s.classes.empty()) throw std::runtime_error(dir + ": no class sub-folders found");  // unreachable: kept as a guard
  for (const auto& c : cls)
    s.label.push_back(std::lower_bound(s.classes.begin(), s.classes.end(), c) - s.classes.begin());
  return s;
}

}  // namespace ddpm::image_folder_detail
