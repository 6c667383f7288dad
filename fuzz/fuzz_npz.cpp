// fuzz_npz.cpp — libFuzzer target: .npy and .npz parsing (formats/npz.h). Every input goes to both parsers.
// What parses must also survive a round trip: serialized again (stored and deflated, or as .npy) it must parse
// back to the same arrays; a failure there, an exception included, is a crash.
#include "ddpm/io/formats/npz.h"

#include <cstdlib>
#include <exception>
#include <string>

namespace {

bool same(const ddpm::NpyArray& a, const ddpm::NpyArray& b) {
  return ddpm::npy_canonical_dtype(a.dtype) == ddpm::npy_canonical_dtype(b.dtype) && a.shape == b.shape &&
         a.data == b.data && !a.fortran_order && !b.fortran_order;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  std::map<std::string, ddpm::NpyArray> arrays;
  bool npz_ok = true;
  try {
    arrays = ddpm::npz_parse(bytes, "fuzz");
  } catch (const std::exception&) {
    npz_ok = false;
  }
  if (npz_ok) {
    const std::vector<std::pair<std::string, ddpm::NpyArray>> list(arrays.begin(), arrays.end());
    for (bool compress : {false, true}) {
      const auto again = ddpm::npz_parse(ddpm::npz_serialize(list, compress), "fuzz (written again)");
      if (again.size() != arrays.size()) std::abort();
      for (const auto& [key, a] : arrays) {
        const auto it = again.find(key);
        if (it == again.end() || !same(a, it->second)) std::abort();
      }
    }
  }

  ddpm::NpyArray array;
  bool npy_ok = true;
  try {
    array = ddpm::npy_parse(bytes, "fuzz");
  } catch (const std::exception&) {
    npy_ok = false;
  }
  if (npy_ok) {
    if (array.data.size() != static_cast<uint64_t>(array.numel()) * array.itemsize()) std::abort();
    if (!same(array, ddpm::npy_parse(ddpm::npy_serialize(array), "fuzz (written again)"))) std::abort();
  }
  return 0;
}
