// test_npz.cpp — the .npy/.npz reader and writer (formats/npz.h): round trips, hand-built files, one rejection
// per rule, and interop both ways with real numpy (tests/npz_interop.py under Debian's /usr/bin/python3; skipped
// with the reason when it cannot import numpy). ZIP archives for the rejection tests come from a small writer
// here (bitwise CRC-32, no code shared with npz.cpp). No LibTorch. Temp files under $DDPM_TEST_TMP (else /tmp).
#include "ddpm/io/formats/npz.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {

#ifdef DDPM_SOURCE_DIR
const fs::path kSourceDir = DDPM_SOURCE_DIR;
#else  // tests/test_npz.cpp -> the checkout (relative when compiled by hand from its root)
const fs::path kSourceDir = fs::path(__FILE__).parent_path().parent_path().empty()
                                ? fs::path(".")
                                : fs::path(__FILE__).parent_path().parent_path();
#endif

// ---- arrays ----------------------------------------------------------------------------------------------------

template <class T, class F>
NpyArray make(const std::string& dtype, std::vector<int64_t> shape, F f) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const T v = static_cast<T>(f(i));
    a.data.append(reinterpret_cast<const char*>(&v), sizeof v);  // little-endian hosts only (checked below)
  }
  return a;
}

// The arrays npz_interop.py's pattern() makes; the two must agree.
std::vector<std::pair<std::string, NpyArray>> pattern() {
  return {
      {"arr_0", make<uint8_t>("|u1", {2, 28, 28, 1}, [](int64_t i) { return (i * 7) % 256; })},
      {"i8", make<int64_t>("<i8", {3, 4}, [](int64_t i) { return (i - 5) * 1000000007LL; })},
      {"f4", make<float>("<f4", {2, 3}, [](int64_t i) { return float(i) * 0.5f - 1.0f; })},
      {"f8", make<double>("<f8", {}, [](int64_t) { return 3.25; })},
      {"empty", make<int32_t>("<i4", {0}, [](int64_t) { return 0; })},
      {"empty3", make<double>("<f8", {2, 0, 3}, [](int64_t) { return 0; })},
      {"b1", make<uint8_t>("|b1", {3}, [](int64_t i) { return i % 2 == 0; })},
      {"u2", make<uint16_t>("<u2", {3}, [](int64_t i) { return i * 30000; })},
      {"i1", make<int8_t>("|i1", {4}, [](int64_t i) { return i * 50 - 100; })},
      {"u4", make<uint32_t>("<u4", {2}, [](int64_t i) { return i == 0 ? 4000000000u : 7u; })},
      {"i4", make<int32_t>("<i4", {2, 2}, [](int64_t i) { return i * -70000; })},
      {"u8", make<uint64_t>("<u8", {2}, [](int64_t i) { return i == 0 ? (1ull << 63) + 5 : 9ull; })},
  };
}

void expect_same(const NpyArray& got, const NpyArray& want, const std::string& what) {
  EXPECT_EQ(got.dtype, want.dtype) << what;
  EXPECT_EQ(got.shape, want.shape) << what;
  EXPECT_FALSE(got.fortran_order) << what;
  EXPECT_TRUE(got.data == want.data) << what << ": data differs (" << got.data.size() << " vs " << want.data.size()
                                     << " bytes)";
}

void expect_pattern(const std::map<std::string, NpyArray>& got, const std::string& what) {
  const auto want = pattern();
  EXPECT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, a] : want) {
    auto it = got.find(name);
    if (it == got.end()) {
      ADD_FAILURE() << what << ": no member " << name;
      continue;
    }
    expect_same(it->second, a, what + "[" + name + "]");
  }
}

// The message of the std::runtime_error that f throws ("(no error)" if none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}
#define EXPECT_ERROR(stmt, part)                                                          \
  do {                                                                                    \
    const std::string msg_ = error_of([&] { (void)(stmt); });                             \
    EXPECT_NE(msg_.find(part), std::string::npos) << "message: " << msg_;                 \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << "not one line: " << msg_;            \
  } while (0)

// ---- hand-built .npy ---------------------------------------------------------------------------------------------

std::string le_bytes(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// A .npy with `dict` as the header text, verbatim (no padding), and `data`.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string s("\x93NUMPY", 6);
  s.push_back(static_cast<char>(major));
  s.push_back(0);
  s += le_bytes(dict.size(), major == 1 ? 2 : 4);
  return s + dict + data;
}
std::string npy_dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

// ---- an independent ZIP writer -------------------------------------------------------------------------------------

uint32_t crc32_bitwise(const std::string& s) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : s) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string raw_deflate(const std::string& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

struct RawMember {
  std::string name, payload;  // payload: the bytes as stored (compressed for method 8)
  uint16_t method = 0, flags = 0;
  uint32_t crc = 0;
  uint64_t usize = 0;
};
RawMember stored(const std::string& name, const std::string& content) {
  return {name, content, 0, 0, crc32_bitwise(content), content.size()};
}
RawMember deflated(const std::string& name, const std::string& content) {
  return {name, raw_deflate(content), 8, 0, crc32_bitwise(content), content.size()};
}

std::string local_header(const RawMember& m) {
  return le_bytes(0x04034b50, 4) + le_bytes(20, 2) + le_bytes(m.flags, 2) + le_bytes(m.method, 2) +
         le_bytes(0, 4) + le_bytes(m.crc, 4) + le_bytes(m.payload.size(), 4) + le_bytes(m.usize, 4) +
         le_bytes(m.name.size(), 2) + le_bytes(0, 2) + m.name;
}
std::string central_entry(const RawMember& m, uint64_t local_offset) {
  return le_bytes(0x02014b50, 4) + le_bytes(20, 2) + le_bytes(20, 2) + le_bytes(m.flags, 2) +
         le_bytes(m.method, 2) + le_bytes(0, 4) + le_bytes(m.crc, 4) + le_bytes(m.payload.size(), 4) +
         le_bytes(m.usize, 4) + le_bytes(m.name.size(), 2) + le_bytes(0, 2) + le_bytes(0, 2) + le_bytes(0, 2) +
         le_bytes(0, 2) + le_bytes(0, 4) + le_bytes(local_offset, 4) + m.name;
}
std::string end_record(uint64_t count, uint64_t cd_size, uint64_t cd_offset, const std::string& comment = "") {
  return le_bytes(0x06054b50, 4) + le_bytes(0, 4) + le_bytes(count, 2) + le_bytes(count, 2) + le_bytes(cd_size, 4) +
         le_bytes(cd_offset, 4) + le_bytes(comment.size(), 2) + comment;
}
std::string raw_zip(const std::vector<RawMember>& members, const std::string& comment = "") {
  std::string file, cd;
  for (const auto& m : members) {
    cd += central_entry(m, file.size());
    file += local_header(m) + m.payload;
  }
  return file + cd + end_record(members.size(), cd.size(), file.size(), comment);
}

std::string small_npy() { return npy_serialize(make<int32_t>("<i4", {3}, [](int64_t i) { return i + 1; })); }

// ---- files -------------------------------------------------------------------------------------------------------

fs::path tmp_dir(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  const auto dir = fs::path(base && *base ? base : "/tmp") / "npz" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Runs tests/npz_interop.py with `args` under /usr/bin/python3; "" on success, else its output.
std::string run_interop(const std::string& args, const fs::path& dir) {
  const fs::path script = kSourceDir / "tests" / "npz_interop.py";
  if (!fs::exists(script)) return script.string() + " not found (compile with -DDDPM_SOURCE_DIR=<checkout>)";
  const fs::path log = dir / "interop.log";
  const std::string cmd = "/usr/bin/python3 '" + script.string() + "' " + args + " > '" + log.string() + "' 2>&1";
  if (std::system(cmd.c_str()) == 0) return "";
  return "failed: " + cmd + "\n" + slurp(log);
}
// Why numpy cannot be used here, or "" if it can.
std::string numpy_missing() {
  if (!fs::exists("/usr/bin/python3")) return "/usr/bin/python3 not found";
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    return "/usr/bin/python3 cannot import numpy (apt-get install python3-numpy)";
  return "";
}

}  // namespace

// ---- .npy ----------------------------------------------------------------------------------------------------------

TEST(Npy, HostIsLittleEndian) {
  const uint16_t one = 1;
  EXPECT_EQ(*reinterpret_cast<const unsigned char*>(&one), 1) << "NpyArray::data is little-endian; so is make<>()";
}

TEST(Npy, HandBuiltFileParses) {
  // The bytes np.save(f, np.array([1, -2], dtype='<i4')) writes: 128-byte preamble, then the data.
  std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
  dict.append(128 - 10 - dict.size() - 1, ' ');
  dict += '\n';
  const std::string data("\x01\x00\x00\x00\xfe\xff\xff\xff", 8);
  const std::string file = npy_bytes(dict, data);
  ASSERT_EQ(file.size(), 136u);
  const NpyArray a = npy_parse(file, "hand.npy");
  EXPECT_EQ(a.dtype, "<i4");
  EXPECT_EQ(a.shape, std::vector<int64_t>{2});
  EXPECT_FALSE(a.fortran_order);
  EXPECT_EQ(a.itemsize(), 4u);
  EXPECT_EQ(a.numel(), 2);
  EXPECT_EQ(a.data, data);
  EXPECT_EQ(npy_serialize(a), file);  // numpy's padding: 21 - len("2") spare spaces, then to 64-byte alignment
}

TEST(Npy, RoundTripsEveryDtypeAndShape) {
  for (const auto& [name, a] : pattern()) {
    const std::string bytes = npy_serialize(a);
    EXPECT_EQ(bytes.size() % 64, a.data.size() % 64) << name << ": preamble not 64-byte aligned";
    EXPECT_EQ(bytes[6], 1) << name;
    expect_same(npy_parse(bytes, name), a, name);
  }
  for (const auto& shape : std::vector<std::vector<int64_t>>{{}, {0}, {3}, {2, 28, 28, 1}}) {
    const NpyArray a = make<float>("<f4", shape, [](int64_t i) { return float(i) / 3; });
    expect_same(npy_parse(npy_serialize(a), "shape"), a, "shape");
  }
}

TEST(Npy, WritesVersion2WhenTheHeaderPasses64K) {
  const NpyArray a = make<uint8_t>("|u1", std::vector<int64_t>(30000, 1), [](int64_t) { return 42; });
  const std::string bytes = npy_serialize(a);
  EXPECT_EQ(bytes[6], 2);
  EXPECT_EQ(bytes.size() % 64, 1u);
  expect_same(npy_parse(bytes, "v2"), a, "v2");
}

TEST(Npy, AcceptsWhatAPythonLiteralAllows) {
  const std::string four(4, '\x07');
  const std::vector<std::pair<std::string, std::vector<int64_t>>> ok = {
      {"{'descr':'<i4','fortran_order':False,'shape':(1,)}", {1}},
      {"{\"shape\": (1, ), \"descr\": \"<i4\", \"fortran_order\": False}", {1}},
      {"{ 'fortran_order' : False ,\n\t'shape' : ( 1 , 1 , ) , 'descr' : '<i4' , }  \n", {1, 1}},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 1, 1)}", {1, 1, 1, 1}},
  };
  for (const auto& [dict, shape] : ok) {
    for (int major : {1, 2, 3}) {
      const NpyArray a = npy_parse(npy_bytes(dict, four, major), "ok.npy");
      EXPECT_EQ(a.dtype, "<i4") << dict;
      EXPECT_EQ(a.shape, shape) << dict;
    }
  }
  // Scalars and empty arrays.
  EXPECT_EQ(npy_parse(npy_bytes(npy_dict("<i4", "()"), four), "s").numel(), 1);
  EXPECT_EQ(npy_parse(npy_bytes(npy_dict("<f8", "(0,)"), ""), "e").numel(), 0);
  EXPECT_EQ(npy_parse(npy_bytes(npy_dict("<f8", "(0, 4611686018427387904)"), ""), "e").numel(), 0);
  EXPECT_EQ(npy_parse(npy_bytes(npy_dict("|u1", "(4611686018427387904, 0)"), ""), "e").numel(), 0);
  // Byte-order spellings numpy accepts: native '=' or none, and anything on 1-byte types.
  for (const std::string d : {"|u1", "<u1", ">u1", "=u1", "u1", "|b1", "?", "<b1", "|i1", ">i1"})
    EXPECT_EQ(npy_parse(npy_bytes(npy_dict(d, "(2,)"), std::string("\x01\x00", 2)), d).itemsize(), 1u) << d;
  for (const std::string d : {"|i8", "=i8", "i8", "<i8", "<u8", "<f8"})
    EXPECT_EQ(npy_parse(npy_bytes(npy_dict(d, "(1,)"), std::string(8, '\0')), d).itemsize(), 8u) << d;
  EXPECT_EQ(npy_canonical_dtype("|i8"), "<i8");
  EXPECT_EQ(npy_canonical_dtype("?"), "|b1");
  EXPECT_EQ(npy_canonical_dtype(">u1"), "|u1");
  // Written canonically.
  NpyArray a = npy_parse(npy_bytes(npy_dict("=i4", "(1,)"), four), "n");
  EXPECT_EQ(npy_parse(npy_serialize(a), "n").dtype, "<i4");
}

TEST(Npy, RejectsBadPreambles) {
  const std::string good = small_npy();
  std::string bad_magic = good;
  bad_magic[1] = 'n';
  EXPECT_ERROR(npy_parse(bad_magic, "f.npy"), "f.npy: not a .npy file (bad magic");
  EXPECT_ERROR(npy_parse("", "f.npy"), "bad magic");
  EXPECT_ERROR(npy_parse(good.substr(0, 8), "f.npy"), "truncated .npy preamble");
  std::string v4 = good, v11 = good;
  v4[6] = 4;
  v11[7] = 1;
  EXPECT_ERROR(npy_parse(v4, "f.npy"), "unsupported .npy version 4.0");
  EXPECT_ERROR(npy_parse(v11, "f.npy"), "unsupported .npy version 1.1");
  EXPECT_ERROR(npy_parse(good.substr(0, 40), "f.npy"), "truncated header");
  EXPECT_ERROR(npy_parse(npy_bytes("{", "", 2).replace(8, 4, le_bytes(0xffffffffu, 4)), "f.npy"), "over the limit");
  EXPECT_ERROR(npy_parse(good.substr(0, good.size() - 1), "f.npy"), "truncated data");
  EXPECT_ERROR(npy_parse(good + "x", "f.npy"), "extra data after the array");
  EXPECT_ERROR(npy_parse(npy_bytes(npy_dict("<i4", "(3,)"), ""), "f.npy"), "needs 3 x 4 bytes of data, the file has 0");
}

TEST(Npy, RejectsBadHeaders) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {npy_dict("<i4", "(3)"), "a 1-d shape is written (N,)"},
      {npy_dict("<i4", "[3]"), "must be a tuple, not a list"},
      {npy_dict("<i4", "(-1,)"), "negative dimension"},
      {npy_dict("<i4", "(01,)"), "leading zero"},
      {npy_dict("<i4", "(1,,)"), "expected an integer dimension"},
      {npy_dict("<i4", "(1 2)"), "expected ',' or ')'"},
      {npy_dict("<i4", "(3L,)"), "expected ',' or ')'"},
      {npy_dict("<i4", "(1.5,)"), "expected ',' or ')'"},
      {npy_dict("<i4", "(4611686018427387905,)"), "dimension larger than 2^62"},
      {npy_dict("<i4", "(99999999999999999999999,)"), "dimension larger than 2^62"},
      {npy_dict("<i4", "(4611686018427387904, 2)"), "more than 2^62 elements"},
      {npy_dict("<i4", "(0, 4611686018427387904, 2)"), "more than 2^62 elements"},
      {npy_dict("<i4", "(1,)", "false"), "must be True or False"},
      {npy_dict("<i4", "(1,)", "Falsey"), "must be True or False"},
      {npy_dict("<i4", "(1,)", "0"), "must be True or False"},
      {npy_dict("<i4", "(1,)", "True"), "fortran_order=True arrays are not supported"},
      {npy_dict(">i4", "(1,)"), "big-endian dtype '>i4'"},
      {npy_dict(">f8", "(1,)"), "big-endian dtype '>f8'"},
      {npy_dict("<f2", "(1,)"), "unsupported dtype '<f2'"},
      {npy_dict("<U3", "(1,)"), "unsupported dtype '<U3'"},
      {npy_dict("|O", "(1,)"), "unsupported dtype '|O'"},
      {npy_dict("<c8", "(1,)"), "unsupported dtype '<c8'"},
      {npy_dict("", "(1,)"), "unsupported dtype ''"},
      {npy_dict("<i\x01", "(1,)"), "unsupported dtype '<i\\x01'"},
      {"{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", "structured dtypes"},
      {"{'descr': '<i4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'descr': '<i4', 'shape': (1,)}", "missing key 'fortran_order'"},
      {"{'fortran_order': False, 'shape': (1,)}", "missing key 'descr'"},
      {"{}", "missing key 'descr'"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unknown key 'extra'"},
      {"{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (1,)}", "repeated key 'descr'"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'shape': (1,)}", "repeated key 'shape'"},
      {"{'descr': '<i\\x34', 'fortran_order': False, 'shape': (1,)}", "escape sequences"},
      {"{'descr': '<i4\n', 'fortran_order': False, 'shape': (1,)}", "unterminated string"},
      {"{'descr': '<i4", "unterminated string"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,)} x", "unexpected text after the header dict"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,)}}", "unexpected text after the header dict"},
      {"{'descr': '<i4' 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}'"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,),,}", "expected a quoted key"},
      {"{'descr' '<i4'}", "expected ':'"},
      {"{descr: '<i4'}", "expected a quoted key"},
      {"['descr']", "expected '{'"},
      {"", "expected '{'"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,", "expected an integer dimension"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,),", "expected a quoted key"},
  };
  for (const auto& item : bad) {  // not a structured binding: C++17 lambdas (in EXPECT_ERROR) cannot capture one
    SCOPED_TRACE(item.first);
    const std::string file = npy_bytes(item.first, std::string(4, '\0'));
    EXPECT_ERROR(npy_parse(file, "h.npy"), "h.npy: ");
    EXPECT_ERROR(npy_parse(file, "h.npy"), item.second);
  }
}

TEST(Npy, SerializeRejectsInconsistentArrays) {
  NpyArray a = make<int32_t>("<i4", {3}, [](int64_t i) { return i; });
  a.data.pop_back();
  EXPECT_ERROR(npy_serialize(a), "npy_serialize: data has 11 bytes, shape (3,) of <i4 needs 3 x 4");
  a = make<int32_t>("<i4", {3}, [](int64_t i) { return i; });
  a.fortran_order = true;
  EXPECT_ERROR(npy_serialize(a), "fortran_order=True is not supported");
  a.fortran_order = false;
  a.dtype = ">i4";
  EXPECT_ERROR(npy_serialize(a), "big-endian dtype '>i4'");
  a.dtype = "<f2";
  EXPECT_ERROR(npy_serialize(a), "unsupported dtype '<f2'");
  a.dtype = "<i4";
  a.shape = {-3};
  EXPECT_ERROR(npy_serialize(a), "negative dimension");
  EXPECT_ERROR(a.numel(), "negative dimension");
}

// ---- .npz ----------------------------------------------------------------------------------------------------------

TEST(Npz, RoundTripsStoredDeflatedAndZip64) {
  for (bool compress : {false, true}) {
    for (bool zip64 : {false, true}) {
      const std::string what = std::string(compress ? "deflate" : "stored") + (zip64 ? "+zip64" : "");
      const std::string bytes = npz_serialize(pattern(), compress, zip64);
      EXPECT_EQ(bytes.find(std::string("PK\x06\x06", 4)) != std::string::npos, zip64) << what;
      expect_pattern(npz_parse(bytes, what), what);
      EXPECT_EQ(npz_serialize(pattern(), compress, zip64), bytes) << what << ": not deterministic";
    }
  }
  const std::vector<std::pair<std::string, NpyArray>> zeros = {
      {"z", make<float>("<f4", {256, 1024}, [](int64_t) { return 0.0f; })}};
  EXPECT_LT(npz_serialize(zeros, true).size() * 100, npz_serialize(zeros, false).size());
  EXPECT_TRUE(npz_parse(npz_serialize({}, false), "empty").empty());
}

TEST(Npz, ReadsHandBuiltArchives) {
  const std::string npy = small_npy();
  const auto one = npz_parse(raw_zip({stored("x.npy", npy)}), "a.npz");
  ASSERT_EQ(one.count("x"), 1u);
  EXPECT_EQ(one.at("x").numel(), 3);
  const auto two = npz_parse(raw_zip({deflated("x.npy", npy), stored("dir/y.npy", npy)}, "a zip comment"), "a.npz");
  EXPECT_EQ(two.size(), 2u);
  EXPECT_EQ(two.count("dir/y"), 1u);
  // A comment holding an end-record signature does not fool the backward search.
  const std::string sneaky = end_record(5, 5, 5) + "tail";
  EXPECT_EQ(npz_parse(raw_zip({stored("x.npy", npy)}, sneaky), "a.npz").size(), 1u);
}

TEST(Npz, RejectsBadArchives) {
  const std::string npy = small_npy();
  std::string bad_crc = raw_zip({stored("x.npy", npy)});
  bad_crc[30 + 5 + npy.size() - 1] ^= 1;  // last data byte
  EXPECT_ERROR(npz_parse(bad_crc, "a.npz"), "a.npz: member 'x.npy': CRC-32 mismatch");
  RawMember m = stored("x.npy", npy);
  m.crc ^= 1;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "CRC-32 mismatch");

  EXPECT_ERROR(npz_parse(raw_zip({stored("x.txt", npy)}), "a.npz"), "member 'x.txt': not a .npy member");
  EXPECT_ERROR(npz_parse(raw_zip({stored("npy", npy)}), "a.npz"), "member 'npy': not a .npy member");
  EXPECT_ERROR(npz_parse(raw_zip({stored("a.npy", npy), stored("a.npy", npy)}), "a.npz"), "duplicate member 'a.npy'");

  m = stored("x.npy", npy);
  m.usize += 1;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "stored member with compressed size 140 != size 141");
  m = deflated("x.npy", npy);
  m.usize += 1;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "inflates to 140 bytes, the directory declares 141");
  m = deflated("x.npy", npy);
  m.usize -= 1;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "inflates past the declared size of 139 bytes");
  // A bomb: 64 MiB of zeros declared as 1000 bytes stops at the first output chunk.
  m = deflated("x.npy", std::string(64 << 20, '\0'));
  m.usize = 1000;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "inflates past the declared size of 1000 bytes");
  m = deflated("x.npy", npy);
  m.payload.resize(m.payload.size() / 2);
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "truncated deflate data");
  m = deflated("x.npy", npy);
  m.payload += "junk";
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "4 bytes after the end of the deflate stream");
  m = deflated("x.npy", npy);
  m.payload[0] = '\xff';  // block type 3: invalid
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "corrupt deflate data");

  m = stored("x.npy", npy);
  m.flags = 1;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "member 'x.npy': encrypted members are not supported");
  m = stored("x.npy", npy);
  m.method = 12;
  EXPECT_ERROR(npz_parse(raw_zip({m}), "a.npz"), "member 'x.npy': unsupported compression method 12");

  // A bad .npy inside is reported with the member's name.
  EXPECT_ERROR(npz_parse(raw_zip({stored("x.npy", npy + "!")}), "a.npz"), "a.npz: member 'x.npy': extra data");
  EXPECT_ERROR(npz_parse(raw_zip({stored("x.npy", "hello")}), "a.npz"), "a.npz: member 'x.npy': not a .npy file");

  // Framing.
  const std::string good = raw_zip({stored("x.npy", npy)});
  EXPECT_ERROR(npz_parse(good.substr(0, good.size() - 1), "a.npz"), "no ZIP end-of-central-directory record");
  EXPECT_ERROR(npz_parse(good + "trailing", "a.npz"), "no ZIP end-of-central-directory record");
  EXPECT_ERROR(npz_parse("PK", "a.npz"), "too short for a ZIP archive");
  EXPECT_ERROR(npz_parse(npy, "a.npz"), "this is a single .npy array");
  EXPECT_ERROR(npz_parse(good.substr(10), "a.npz"), "a.npz: ");
  std::string renamed = good;
  renamed[30] = 'y';  // the local header's copy of the name
  EXPECT_ERROR(npz_parse(renamed, "a.npz"), "member 'x.npy': the local header names 'y.npy'");
  std::string two_entries = good;
  two_entries[two_entries.size() - 22 + 10] = 2;  // the end record claims 2 entries
  two_entries[two_entries.size() - 22 + 8] = 2;
  EXPECT_ERROR(npz_parse(two_entries, "a.npz"), "cannot hold 2 entries");
  std::string far_cd = good;
  far_cd[far_cd.size() - 22 + 16] ^= 0x40;  // directory offset
  EXPECT_ERROR(npz_parse(far_cd, "a.npz"), "lies outside the archive");
  std::string multi = good;
  multi[multi.size() - 22 + 4] = 1;
  EXPECT_ERROR(npz_parse(multi, "a.npz"), "multi-disk");
}

TEST(Npz, RejectsOverlappingMembers) {
  // a.npy's data contains all of b.npy (local header and data); b's directory entry points inside it.
  const RawMember b = stored("b.npy", small_npy());
  const RawMember a = stored("a.npy", local_header(b) + b.payload);
  const std::string files = local_header(a) + a.payload;
  const std::string cd = central_entry(a, 0) + central_entry(b, local_header(a).size());
  const std::string zip = files + cd + end_record(2, cd.size(), files.size());
  EXPECT_ERROR(npz_parse(zip, "a.npz"), "members 'a.npy' and 'b.npy' overlap");
}

TEST(Npz, Zip64Fields) {
  // Our writer's forced ZIP64 archive, one stored member: its central ZIP64 extra holds usize, csize, offset.
  const std::string good = npz_serialize({{"x", npy_parse(small_npy(), "x")}}, false, true);
  const size_t cd = good.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(cd, std::string::npos);
  const size_t extra = cd + 46 + 5;  // after the name "x.npy"
  ASSERT_EQ(good.substr(extra, 4), std::string("\x01\x00\x18\x00", 4));
  std::string big = good;
  big.replace(extra + 4, 8, le_bytes(1ull << 41, 8));
  EXPECT_ERROR(npz_parse(big, "z.npz"), "member 'x.npy': declared size 2199023255552 is over the limit");
  std::string small = good;
  small.replace(extra + 4, 8, le_bytes(7, 8));
  EXPECT_ERROR(npz_parse(small, "z.npz"), "stored member with compressed size 140 != size 7");
  std::string cut = good;
  cut[extra + 2] = 8;  // the extra field claims only 8 bytes: no room for csize and offset
  EXPECT_ERROR(npz_parse(cut, "z.npz"), "truncated ZIP64 extra field");
  // ZIP64 end record: its directory offset wins over the end record's.
  const size_t z64 = good.find(std::string("PK\x06\x06", 4));
  ASSERT_NE(z64, std::string::npos);
  std::string moved = good;
  moved.replace(z64 + 48, 8, le_bytes(1ull << 50, 8));
  EXPECT_ERROR(npz_parse(moved, "z.npz"), "lies outside the archive");
  std::string bad_sig = good;
  bad_sig[z64 + 3] = 0;
  EXPECT_ERROR(npz_parse(bad_sig, "z.npz"), "corrupt ZIP64 end record");
}

TEST(Npz, SerializeRejectsDuplicatesAndBadArrays) {
  const NpyArray a = npy_parse(small_npy(), "a");
  EXPECT_ERROR(npz_serialize({{"a", a}, {"a", a}}, false), "npz_serialize: duplicate array name 'a'");
  NpyArray bad = a;
  bad.data += "x";
  EXPECT_ERROR(npz_serialize({{"b", bad}}, true), "npz_serialize: array 'b': data has 13 bytes");
}

TEST(Npz, LoadsFromAFile) {
  const fs::path dir = tmp_dir("load");
  spit(dir / "p.npz", npz_serialize(pattern(), true));
  expect_pattern(npz_load((dir / "p.npz").string()), "p.npz");
  EXPECT_ERROR(npz_load((dir / "missing.npz").string()), (dir / "missing.npz").string() + ": cannot open file");
  EXPECT_ERROR(npz_load(dir.string()), "not a regular file");
  spit(dir / "bad.npz", raw_zip({stored("x.txt", small_npy())}));
  EXPECT_ERROR(npz_load((dir / "bad.npz").string()), (dir / "bad.npz").string() + ": member 'x.txt'");
}

// ---- numpy, both ways ----------------------------------------------------------------------------------------------

TEST(NpzInterop, WeReadNumpysFiles) {
  const std::string missing = numpy_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  const fs::path dir = tmp_dir("from_numpy");
  ASSERT_EQ(run_interop("write '" + dir.string() + "'", dir), "");
  expect_pattern(npz_load((dir / "np_stored.npz").string()), "np.savez");
  expect_pattern(npz_load((dir / "np_deflated.npz").string()), "np.savez_compressed");
  const std::string single = slurp(dir / "np_single.npy");
  const NpyArray want = pattern()[0].second;
  expect_same(npy_parse(single, "np.save"), want, "np.save");
  EXPECT_TRUE(npy_serialize(want) == single) << "npy_serialize differs from np.save's bytes";
  EXPECT_ERROR(npy_parse(slurp(dir / "np_fortran.npy"), "np_fortran.npy"), "fortran_order=True");
  EXPECT_ERROR(npy_parse(slurp(dir / "np_bigendian.npy"), "np_bigendian.npy"), "big-endian dtype '>i4'");
}

TEST(NpzInterop, NumpyReadsOurFiles) {
  const std::string missing = numpy_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  const fs::path dir = tmp_dir("to_numpy");
  std::string files;
  for (const auto& [name, compress, zip64] : std::vector<std::tuple<std::string, bool, bool>>{
           {"ours_stored.npz", false, false}, {"ours_deflated.npz", true, false}, {"ours_zip64.npz", true, true}}) {
    spit(dir / name, npz_serialize(pattern(), compress, zip64));
    files += " '" + (dir / name).string() + "'";
  }
  spit(dir / "ours_single.npy", npy_serialize(pattern()[0].second));
  files += " '" + (dir / "ours_single.npy").string() + "'";
  EXPECT_EQ(run_interop("check" + files, dir), "");
}
