// make_image_tree.cpp — writes small deterministic PNG/JPEG files for tests of `images:DIR` datasets (the layouts
// are in tests/image_tree.h). A test tool, not part of the library or the CLI.
//   make_image_tree DIR                         the test tree under DIR
//   make_image_tree --truncated-jpeg FILE       a 64×64 JPEG cut to 60% of its bytes (likewise --truncated-png)
//   make_image_tree --solid FILE W H C VALUE    a constant image (PNG, or JPEG if FILE ends in .jpg/.jpeg)
//   make_image_tree --pattern FILE W H C        a gradient image
// Several may be given in one call; they run in order. Exit status 2 on bad arguments, 1 on errors.
#include "image_tree.h"

#include <cstdlib>
#include <iostream>
#include <string>

namespace {

int usage(const std::string& why) {
  std::cerr << "make_image_tree: " << why << "\n"
            << "usage: make_image_tree [DIR] [--truncated-jpeg FILE] [--truncated-png FILE] "
               "[--solid FILE W H C VALUE] [--pattern FILE W H C]\n";
  return 2;
}

bool to_int(const std::string& s, int lo, int hi, int& v) {
  char* end = nullptr;
  const long x = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || x < lo || x > hi) return false;
  v = static_cast<int>(x);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("nothing to do");
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto need = [&](int k) { return i + k < argc; };
      if (a == "--truncated-jpeg" || a == "--truncated-png") {
        if (!need(1)) return usage(a + " needs FILE");
        image_tree::write_truncated(argv[++i]);
      } else if (a == "--solid" || a == "--pattern") {
        const int k = a == "--solid" ? 5 : 4;
        if (!need(k)) return usage(a + " needs " + (k == 5 ? "FILE W H C VALUE" : "FILE W H C"));
        const std::string file = argv[i + 1];
        int w = 0, h = 0, c = 0, v = 0;
        if (!to_int(argv[i + 2], 1, 16384, w) || !to_int(argv[i + 3], 1, 16384, h) || !to_int(argv[i + 4], 1, 4, c) ||
            (k == 5 && !to_int(argv[i + 5], 0, 255, v)))
          return usage(a + ": W, H in 1..16384, C in 1..4, VALUE in 0..255");
        if (k == 5) image_tree::write_solid(file, w, h, c, v);
        else image_tree::write_pattern(file, w, h, c);
        i += k;
      } else if (a.size() > 1 && a[0] == '-') {
        return usage("unknown option " + a);
      } else {
        image_tree::make_tree(a);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "make_image_tree: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
