// image_folder.cpp — see image_folder.h: ImageFolder::load, the orchestration only (scan, then reuse the cache or
// decode every file in parallel batches, then write the cache). The pieces: image_scan (listing), image_check
// (PNG/JPEG completeness), image_decode (one file to pixels), image_manifest (the manifest text), image_cache (the
// cache file). No LibTorch.
#include "ddpm/data/image_folder.h"

#include "ddpm/data/image_cache.h"
#include "ddpm/data/image_decode.h"
#include "ddpm/data/image_folder_detail.h"
#include "ddpm/data/image_manifest.h"
#include "ddpm/data/image_scan.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

namespace ddpm {
using namespace image_folder_detail;  // this file's own helpers; nothing of it is declared in a header
namespace {

void say(const ImageFolderOptions& o, const std::string& line) {
  if (o.log) *o.log << line << std::endl;
}

int thread_count(const ImageFolderOptions& o, size_t files) {
  int t = o.threads;
  if (t <= 0) t = std::min(8, std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(size_t(t), files)));
}

}  // namespace

struct ImageFolderBuilder {
  // Decodes every scanned file in order, handing each kept image [C,S,S] to `sink`; fills the manifest entries,
  // labels, files and skipped count of `out`.
  template <class Sink>
  static void decode_all(const std::string& dir, const Scan& s, const ImageFolderOptions& o, const std::string& what,
                         Manifest& m, ImageFolder& out, Sink&& sink) {
    const size_t n = s.files.size();
    const int threads = thread_count(o, n);
    say(o, "decoding " + std::to_string(n) + " images from " + dir + " " + what);
    const size_t batch = size_t(threads) * 16;
    size_t next_report = 1000;
    std::vector<Decoded> slot(std::min(batch, n));
    for (size_t start = 0; start < n; start += batch) {
      const size_t count = std::min(batch, n - start);
      for (size_t i = 0; i < count; ++i) slot[i] = Decoded();
      std::atomic<size_t> next{0};
      auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < count;) decode_one(join(dir, s.files[start + i].rel), o, slot[i]);
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < threads && size_t(t) < count; ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
      for (size_t i = 0; i < count; ++i) {  // in order, so the first error reported is the first file's
        Decoded& d = slot[i];
        const FileInfo& f = s.files[start + i];
        if (d.fatal) std::rethrow_exception(d.fatal);
        Entry e{d.ok, d.have_stat ? d.bytes : f.bytes, d.have_stat ? d.mtime : f.mtime, f.rel};
        if (!d.ok) {
          if (!o.skip_bad || !d.skippable) throw std::runtime_error(d.error);
          say(o, "skipping " + d.error);
          ++out.skipped_;
        } else {
          sink(d.chw);
          out.files_.push_back(f.rel);
          if (o.labels) out.labels_.push_back(s.label[start + i]);
        }
        m.entries.push_back(std::move(e));
        d.chw = std::vector<uint8_t>();
      }
      const size_t done = start + count;
      if (done >= next_report && done < n) {
        say(o, "decoding " + std::to_string(done) + "/" + std::to_string(n) + " images");
        next_report = (done / 1000 + 1) * 1000;
      }
    }
    if (out.files_.empty())
      throw std::runtime_error(dir + ": none of the " + std::to_string(n) + " image files could be decoded (all skipped)");
    out.n_ = static_cast<int64_t>(out.files_.size());
    say(o, "decoded " + std::to_string(out.n_) + " images" +
               (out.skipped_ ? " (" + std::to_string(out.skipped_) + " skipped)" : std::string()) + " " + what);
  }

  static Manifest new_manifest(const std::string& dir, const Scan& s, const ImageFolderOptions& o) {
    Manifest m;
    m.size = o.size;
    m.channels = o.channels;
    m.labels = o.labels;
    m.allow_upscale = o.allow_upscale;
    m.dir = dir;
    m.classes = s.classes;
    return m;
  }

  static ImageFolder in_memory(const std::string& dir, const Scan& s, const ImageFolderOptions& o) {
    ImageFolder out;
    out.c_ = o.channels;
    out.s_ = o.size;
    out.classes_ = s.classes;
    Manifest m = new_manifest(dir, s, o);
    auto buf = std::make_shared<std::vector<uint8_t>>();
    buf->reserve(s.files.size() * size_t(o.channels) * o.size * o.size);  // an upper bound: skipped files shrink it
    decode_all(dir, s, o, "(no cache)", m, out, [&](const std::vector<uint8_t>& img) {
      buf->insert(buf->end(), img.begin(), img.end());
    });
    out.pixels_ = buf->data();
    out.hold_ = buf;
    return out;
  }

  // Writes the cache through a temp file (removed again on any error) and returns it mapped.
  static ImageFolder build_cache(const std::string& dir, const Scan& s, const ImageFolderOptions& o) {
    const std::string& path = o.cache;
    CacheWriter w(path);
    ImageFolder out;
    out.c_ = o.channels;
    out.s_ = o.size;
    out.classes_ = s.classes;
    Manifest m = new_manifest(dir, s, o);
    decode_all(dir, s, o, "into " + path, m, out, [&](const std::vector<uint8_t>& img) { w.put(img.data(), img.size()); });
    const Mapped map = w.finish(uint32_t(o.channels), uint32_t(o.size), uint64_t(out.n_), o.labels, out.labels_, manifest_text(m));
    out.hold_ = map.hold;
    out.pixels_ = map.base + kPrefixBytes;
    out.from_cache_ = false;
    return out;
  }

  // Opens an existing cache; returns "" and fills `out` if it can be used, else why not.
  static std::string try_cache(const std::string& dir, const Scan& s, const ImageFolderOptions& o, ImageFolder& out) {
    CacheContents c;
    std::string why = open_cache(o.cache, c);
    if (why.empty()) {
      why = compare_with_scan(c.m, s, o, dir);
      if (!why.empty()) why = "is stale: " + why;
    }
    if (!why.empty()) return why;
    out.hold_ = c.map.hold;
    out.pixels_ = c.pixels;
    out.n_ = int64_t(c.h.n);
    out.c_ = int(c.h.c);
    out.s_ = int(c.h.s);
    out.labels_ = std::move(c.labels);
    out.classes_ = c.m.classes;
    out.files_.clear();
    out.skipped_ = 0;
    for (const auto& e : c.m.entries) {
      if (e.kept) out.files_.push_back(e.rel);
      else ++out.skipped_;
    }
    out.from_cache_ = true;
    return "";
  }
};

ImageFolder ImageFolder::load(const std::string& dir, const ImageFolderOptions& o) {
  if (o.size <= 0 || o.size > kImageFolderMaxSide)
    throw std::runtime_error(dir + ": image size must be in 1.." + std::to_string(kImageFolderMaxSide) + " (got " + std::to_string(o.size) + ")");
  if (o.channels != 1 && o.channels != 3)
    throw std::runtime_error(dir + ": channels must be 1 or 3 (got " + std::to_string(o.channels) + ")");
  const Scan s = scan_dir(dir, o.labels);
  if (o.cache.empty()) return ImageFolderBuilder::in_memory(dir, s, o);
  ImageFolder out;
  const std::string why = ImageFolderBuilder::try_cache(dir, s, o, out);
  if (why.empty()) {
    say(o, "using image cache " + o.cache + " (" + std::to_string(out.n_) + " images of " + std::to_string(out.c_) + "x" +
               std::to_string(out.s_) + "x" + std::to_string(out.s_) + ")");
    return out;
  }
  // A file that is not a cache at all (a mistyped --cache pointing at a checkpoint, say) is never replaced.
  if (why == image_folder_detail::kNotACacheReason)
    throw std::runtime_error(o.cache + ": exists and is not a ddpm image cache; refusing to overwrite it (remove it "
                             "or choose another cache path)");
  say(o, "cache " + o.cache + " " + why + "; " + (why == "does not exist" ? "building it" : "rebuilding"));
  return ImageFolderBuilder::build_cache(dir, s, o);
}

}  // namespace ddpm
