// npz.h — NumPy .npy arrays and .npz archives over bytes, without LibTorch (the fuzz target compiles it as is).
//
// .npy (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
//   "\x93NUMPY" | major | minor | header length (u16 LE for 1.0; u32 LE for 2.0 and 3.0) | header | data
//   The header is a Python dict literal, padded with spaces and ending in '\n':
//     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 28, 28, 1), }
//   and the data is prod(shape) · itemsize raw bytes. Read: versions 1.0, 2.0, 3.0; the dict is parsed by hand
//   (the three keys in any order, whitespace, single or double quotes, trailing commas, shapes () and (N,));
//   anything else — a missing, unknown or repeated key, a string escape, a list where a tuple belongs, a
//   negative or leading-zero dimension, trailing text — is rejected. Write: version 1.0 (2.0 if the header
//   would not fit in 65535 bytes), padded as np.save pads (spare room for the first axis, then to a multiple of
//   64 bytes): the bytes are np.save's own.
//   dtypes: |u1 |i1 |b1 <u2 <i2 <u4 <i4 <u8 <i8 <f4 <f8. The byte-order character may be '<', '|', '=' or
//   absent (all little-endian on the hosts we build for), and anything for 1-byte types; '>' on a wider type
//   is rejected (big-endian), as are other dtypes (strings, objects, structured, float16, complex) and
//   fortran_order=True (transpose to C order in numpy: np.ascontiguousarray).
//
// .npz (np.savez / np.savez_compressed): a ZIP archive (https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT)
//   whose members NAME.npy are .npy files. Read: the end-of-central-directory record (searched backwards past
//   an archive comment), the ZIP64 locator and record when present, then the central directory with ZIP64
//   extra fields (numpy writes ZIP64 headers: np.savez forces them); stored (method 0) and deflate (method 8)
//   members. Every member is checked: name ends in ".npy" and is unique, not encrypted, its local header
//   names the same file, members and the directory do not overlap (no overlapping-entry zip bombs), the
//   declared size is <= kNpzMaxMemberBytes and matches exactly what inflates (inflating past it stops at
//   once; nothing after the deflate stream), the CRC-32 matches. No buffer is sized from a claimed size alone:
//   at most what the compressed bytes could inflate to (deflate's ~1032:1).
//   Write: local headers + central directory + end record, stored or deflate, DOS time fixed at 1980-01-01
//   (the same arrays give the same bytes). ZIP64 extra fields and the ZIP64 end records are written when a
//   member, an offset or the directory passes 4 GiB or there are 65535+ members — or always, with force_zip64.
//
// Errors: std::runtime_error "<source>: <why>", a member's as "<source>: member 'NAME.npy': <why>".
// Not here: tensors (the caller copies NpyArray::data), atomic file writes (the caller's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ddpm {

constexpr uint64_t kNpyMaxHeaderBytes = 1ull << 20;  // 1 MiB; np.save writes 128 bytes for 4-d arrays
constexpr uint64_t kNpyMaxElements = 1ull << 62;     // a shape whose product passes this is refused
constexpr uint64_t kNpzMaxMemberBytes = 1ull << 40;  // 1 TiB: a member declaring more is refused

struct NpyArray {
  std::string dtype;            // numpy descr as written, e.g. "|u1", "<i8", "<f4", "<f8", "<i4"
  std::vector<int64_t> shape;   // () for a scalar
  bool fortran_order = false;   // reading a fortran_order=True array is an error
  std::string data;             // raw little-endian bytes, C order, size == prod(shape) * itemsize

  size_t itemsize() const;      // bytes per element; throws on an unsupported dtype
  int64_t numel() const;        // prod(shape), 1 for (); throws on a negative dimension or overflow
};

// The canonical spelling of a supported dtype ("|u1", "<i8", ...), as numpy writes it; throws
// "<source>: unsupported dtype '...'" (or "big-endian dtype '>i4' ...") otherwise.
std::string npy_canonical_dtype(const std::string& dtype, const std::string& source = "npy");

// Parses a whole .npy file (versions 1.0, 2.0, 3.0); `source` names it in errors.
NpyArray npy_parse(const std::string& bytes, const std::string& source);
// Version 1.0 (2.0 if the header passes 65535 bytes); the dtype is written canonically. Throws if the data
// size does not match the shape and dtype, or on fortran_order.
std::string npy_serialize(const NpyArray& a);

// Parses a whole .npz file; keys are the member names without ".npy".
std::map<std::string, NpyArray> npz_parse(const std::string& bytes, const std::string& source);
// Names get ".npy" appended (np.load(path)["arr_0"] reads the member "arr_0.npy"); duplicate names throw.
// compress: deflate every member (np.savez_compressed), else store them (np.savez).
std::string npz_serialize(const std::vector<std::pair<std::string, NpyArray>>& arrays, bool compress,
                          bool force_zip64 = false);
// Reads the file at `path` and parses it (errors name the path).
std::map<std::string, NpyArray> npz_load(const std::string& path);

}  // namespace ddpm
