// image_manifest.cpp — see image_manifest.h: the manifest text (write, parse) and its comparison with a scan.
// No file I/O. No LibTorch.
#include "ddpm/data/image_manifest.h"

#include "ddpm/data/image_folder_detail.h"

#include <algorithm>
#include <limits>
#include <sstream>
#include <utility>

namespace ddpm::image_folder_detail {
namespace {

constexpr const char* kManifestTitle = "ddpm image cache";

std::string escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '\t') out += "\\t";
    else if (ch == '\n') out += "\\n";
    else if (ch == '\r') out += "\\r";
    else out += ch;
  }
  return out;
}
bool unescape(const std::string& s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    if (++i == s.size()) return false;
    const char c = s[i];
    if (c == '\\') out += '\\';
    else if (c == 't') out += '\t';
    else if (c == 'n') out += '\n';
    else if (c == 'r') out += '\r';
    else return false;
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

bool parse_u64(const std::string& s, uint64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  return true;
}

std::string options_line(int size, int channels, bool labels, bool allow_upscale) {
  return "options\tsize=" + std::to_string(size) + "\tchannels=" + std::to_string(channels) +
         "\tlabels=" + (labels ? "1" : "0") + "\tallow_upscale=" + (allow_upscale ? "1" : "0");
}

}  // namespace

std::string manifest_text(const Manifest& m) {
  std::ostringstream s;
  s << kManifestTitle << '\t' << kImageCacheVersion << '\n'
    << options_line(m.size, m.channels, m.labels, m.allow_upscale) << '\n'
    << "dir\t" << escape(m.dir) << '\n'
    << "classes\t" << m.classes.size();
  for (const auto& c : m.classes) s << '\t' << escape(c);
  s << "\nfiles\t" << m.entries.size() << '\n';
  for (const auto& e : m.entries)
    s << (e.kept ? "kept" : "skipped") << '\t' << e.bytes << '\t' << e.mtime << '\t' << escape(e.rel) << '\n';
  return s.str();
}

std::string parse_manifest(const std::string& text, Manifest& m) {
  std::vector<std::string> lines = split(text, '\n');
  if (lines.empty() || !lines.back().empty()) return "manifest does not end with a newline";
  lines.pop_back();
  if (lines.size() < 4 || lines[0] != std::string(kManifestTitle) + "\t" + std::to_string(kImageCacheVersion))
    return "manifest has a wrong title line";
  const auto opt = split(lines[1], '\t');
  if (opt.size() != 5 || opt[0] != "options") return "manifest has a bad options line";
  for (size_t i = 1; i < opt.size(); ++i) {
    const auto eq = opt[i].find('=');
    uint64_t v = 0;
    if (eq == std::string::npos || !parse_u64(opt[i].substr(eq + 1), v) || v > (1u << 20)) return "manifest has a bad option " + opt[i];
    const std::string k = opt[i].substr(0, eq);
    if (k == "size") m.size = static_cast<int>(v);
    else if (k == "channels") m.channels = static_cast<int>(v);
    else if (k == "labels") m.labels = v != 0;
    else if (k == "allow_upscale") m.allow_upscale = v != 0;
    else return "manifest has an unknown option " + k;
  }
  const auto dl = split(lines[2], '\t');
  if (dl.size() != 2 || dl[0] != "dir" || !unescape(dl[1], m.dir)) return "manifest has a bad dir line";
  const auto cl = split(lines[3], '\t');
  uint64_t k = 0;
  if (cl.size() < 2 || cl[0] != "classes" || !parse_u64(cl[1], k) || k != cl.size() - 2) return "manifest has a bad classes line";
  for (size_t i = 2; i < cl.size(); ++i) {
    std::string c;
    if (!unescape(cl[i], c)) return "manifest has a bad class name";
    m.classes.push_back(c);
  }
  if (lines.size() < 5) return "manifest has no files line";
  const auto fl = split(lines[4], '\t');
  uint64_t nf = 0;
  if (fl.size() != 2 || fl[0] != "files" || !parse_u64(fl[1], nf) || nf != lines.size() - 5) return "manifest has a bad files count";
  for (size_t i = 5; i < lines.size(); ++i) {
    const auto f = split(lines[i], '\t');
    Entry e;
    uint64_t mt = 0;
    if (f.size() != 4 || (f[0] != "kept" && f[0] != "skipped") || !parse_u64(f[1], e.bytes) || !parse_u64(f[2], mt) ||
        mt > uint64_t(std::numeric_limits<int64_t>::max()) || !unescape(f[3], e.rel))
      return "manifest line " + std::to_string(i + 1) + " is malformed";
    e.kept = f[0] == "kept";
    e.mtime = static_cast<int64_t>(mt);
    m.entries.push_back(std::move(e));
  }
  return "";
}

std::string compare_with_scan(const Manifest& m, const Scan& s, const ImageFolderOptions& o, const std::string& dir) {
  if (m.size != o.size) return "built for size " + std::to_string(m.size) + ", now " + std::to_string(o.size);
  if (m.channels != o.channels) return "built for " + std::to_string(m.channels) + " channels, now " + std::to_string(o.channels);
  if (m.labels != o.labels) return std::string("built ") + (m.labels ? "with" : "without") + " labels, now " + (o.labels ? "with" : "without");
  if (m.allow_upscale != o.allow_upscale)
    return std::string("built with upscaling ") + (m.allow_upscale ? "allowed" : "refused") + ", now " + (o.allow_upscale ? "allowed" : "refused");
  const size_t n = std::max(m.entries.size(), s.files.size());
  for (size_t i = 0; i < n; ++i) {
    const bool have_old = i < m.entries.size(), have_new = i < s.files.size();
    if (have_old && have_new && m.entries[i].rel == s.files[i].rel) {
      const Entry& e = m.entries[i];
      const FileInfo& f = s.files[i];
      if (e.bytes != f.bytes)
        return join(dir, f.rel) + " changed (size " + std::to_string(e.bytes) + " -> " + std::to_string(f.bytes) + ")";
      if (e.mtime != f.mtime) return join(dir, f.rel) + " changed (mtime " + fmt_mtime(e.mtime) + " -> " + fmt_mtime(f.mtime) + ")";
      continue;
    }
    if (have_new && (!have_old || s.files[i].rel < m.entries[i].rel)) return join(dir, s.files[i].rel) + " was added";
    return join(dir, m.entries[i].rel) + " was removed";
  }
  if (m.classes != s.classes) return "the class list changed";  // implied by the file list; kept as a guard
  if (!o.skip_bad) {
    size_t k = 0;
    const Entry* first = nullptr;
    for (const auto& e : m.entries)
      if (!e.kept && ++k == 1) first = &e;
    if (first)
      return "it skipped " + std::to_string(k) + " unreadable file(s) (first " + join(dir, first->rel) + ") and skip_bad is off";
  }
  return "";
}

}  // namespace ddpm::image_folder_detail
