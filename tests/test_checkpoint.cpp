// test_checkpoint.cpp — safetensors round trips, byte layout, and rejection of corrupt files.
#include "ddpm/io/checkpoint.h"
#include "ddpm/nn/unet.h"
#include "ddpm/samplers/ddpm_sampler.h"
#include "ddpm/util/runtime.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace ddpm;
namespace fs = std::filesystem;

namespace {
std::string tmp_path(const std::string& name) {
  const char* base = std::getenv("DDPM_TEST_TMP");
  auto dir = fs::path(base ? base : fs::temp_directory_path().string()) / "checkpoint";
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string header_with(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}

SafeTensors tiny_checkpoint(UNet& net) {
  Config cfg;
  cfg.preset = "tiny";
  cfg.model = preset_model("tiny");
  SafeTensors st;
  add_module_state(st, *net, "ema.");
  st.metadata = checkpoint_metadata(cfg, 42);
  return st;
}
}  // namespace

TEST(SafeTensors, ByteLayoutFollowsTheSpec) {
  SafeTensors st;
  st.tensors.emplace_back("a", torch::tensor({1.0f, 2.0f}));
  st.tensors.emplace_back("b", torch::tensor({int64_t(3)}));
  st.metadata["k"] = "v";
  const auto bytes = safetensors_serialize(st);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ((8 + n) % 8, 0u);  // data section aligned
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["a"]["dtype"], "F32");
  EXPECT_EQ(header["a"]["shape"], nlohmann::json::array({2}));
  EXPECT_EQ(header["a"]["data_offsets"], nlohmann::json::array({0, 8}));
  EXPECT_EQ(header["b"]["dtype"], "I64");
  EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json::array({8, 16}));
  EXPECT_EQ(header["__metadata__"]["k"], "v");
  EXPECT_EQ(bytes.size(), 8 + n + 16);
  float f;
  std::memcpy(&f, bytes.data() + 8 + n + 4, 4);
  EXPECT_EQ(f, 2.0f);
}

TEST(SafeTensors, RoundTripKeepsValuesDtypesAndMetadata) {
  SafeTensors st;
  st.tensors.emplace_back("f32", torch::randn({3, 4}));
  st.tensors.emplace_back("f64", torch::randn({2}, torch::kFloat64));
  st.tensors.emplace_back("u8", torch::randint(0, 255, {5}, torch::kUInt8));
  st.tensors.emplace_back("scalar", torch::tensor(3.5f).reshape({}));
  st.tensors.emplace_back("empty", torch::zeros({0, 3}));
  st.metadata["x"] = "y";
  const auto path = tmp_path("rt.safetensors");
  safetensors_save(path, st);
  auto back = safetensors_load(path);
  ASSERT_EQ(back.tensors.size(), st.tensors.size());
  for (const auto& [name, t] : st.tensors) {
    const auto* b = back.find(name);
    ASSERT_NE(b, nullptr) << name;
    EXPECT_EQ(b->scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(*b, t)) << name;
  }
  EXPECT_EQ(back.metadata.at("x"), "y");
}

TEST(SafeTensors, RejectsCorruptFiles) {
  const std::string ok_data(8, '\0');
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"short", std::string("\x01\x02", 2)},
      {"header longer than file", header_with("{}", "").replace(0, 1, "\x7f")},
      {"absurd header length", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}"},
      {"invalid json", header_with("{\"a\": [", ok_data)},
      {"not an object", header_with("[1,2]", "")},
      {"unknown dtype", header_with(R"({"a":{"dtype":"F8X","shape":[2],"data_offsets":[0,8]}})", ok_data)},
      {"size mismatch", header_with(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", ok_data)},
      {"out of range", header_with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", ok_data)},
      {"gap", header_with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", ok_data)},
      {"overlap", header_with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", ok_data)},
      {"negative dim", header_with(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", ok_data)},
      {"trailing bytes", header_with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", ok_data)},
      {"missing fields", header_with(R"({"a":{"dtype":"F32"}})", "")},
  };
  for (const auto& [what, bytes] : bad) EXPECT_THROW(safetensors_parse(bytes, what), std::runtime_error) << what;
}

TEST(Checkpoint, SaveLoadGivesIdenticalWeightsAndSamples) {
  torch::manual_seed(3);
  UNet net(preset_model("tiny"));
  {
    torch::NoGradGuard ng;  // non-trivial output weights so samples depend on every tensor
    net->conv_out->weight.normal_(0, 0.05);
  }
  const auto path = tmp_path("tiny.safetensors");
  safetensors_save(path, tiny_checkpoint(net));
  auto ck = load_checkpoint(path);
  EXPECT_EQ(ck.step, 42);
  EXPECT_EQ(ck.config.preset, "tiny");
  auto loaded = load_sampling_model(ck, torch::kCPU);
  auto pa = net->named_parameters();
  auto pb = loaded->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].value(), pb[i].value())) << pa[i].key();

  net->eval();
  net->set_compute(loaded->compute());  // the same arithmetic (load_sampling_model picks NHWC on the CPU)
  Schedule s(BetaSchedule::Linear, 1000);
  auto sample = [&](Backbone m) {
    torch::NoGradGuard ng;
    auto gen = make_generator(9);
    auto x_T = torch::randn({2, 1, 28, 28}, gen);
    DDPMSamplerOptions o;
    o.steps = 5;
    return ddpm_sample(s, [&](const torch::Tensor& x, const torch::Tensor& t) { return m->forward(x, t); }, x_T,
                       generator_noise(gen), o);
  };
  EXPECT_TRUE(torch::equal(sample(net), sample(loaded)));
}

TEST(Checkpoint, RejectsForeignTruncatedAndMismatchedFiles) {
  UNet net(preset_model("tiny"));
  const auto good = tmp_path("good.safetensors");
  safetensors_save(good, tiny_checkpoint(net));
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  const auto truncated = tmp_path("truncated.safetensors");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_THROW(load_checkpoint(truncated), std::runtime_error);

  const auto foreign = tmp_path("foreign.safetensors");
  SafeTensors other;
  other.tensors.emplace_back("w", torch::zeros({2}));
  safetensors_save(foreign, other);
  try {
    load_checkpoint(foreign);
    FAIL() << "foreign safetensors accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a ddpm checkpoint"), std::string::npos);
  }

  const auto text = tmp_path("text.safetensors");
  std::ofstream(text) << "hello, this is not a checkpoint";
  EXPECT_THROW(load_checkpoint(text), std::runtime_error);
  EXPECT_THROW(load_checkpoint(tmp_path("missing.safetensors")), std::runtime_error);

  // Right format, wrong architecture: the fmnist preset's weights into a tiny config.
  UNet big(preset_model("fmnist"));
  auto st = tiny_checkpoint(net);
  st.tensors.clear();
  add_module_state(st, *big, "ema.");
  const auto mismatched = tmp_path("mismatched.safetensors");
  safetensors_save(mismatched, st);
  auto ck = load_checkpoint(mismatched);
  EXPECT_THROW(load_sampling_model(ck, torch::kCPU), std::runtime_error);
}

TEST(Checkpoint, FailedWriteLeavesPreviousFileIntact) {
  const auto path = tmp_path("keep.safetensors");
  SafeTensors st;
  st.tensors.emplace_back("a", torch::ones({4}));
  safetensors_save(path, st);
  const auto before = fs::file_size(path);
  SafeTensors bad;
  bad.tensors.emplace_back("a", torch::ones({4}));
  bad.tensors.emplace_back("a", torch::ones({4}));  // duplicate name: serialisation fails before any write
  EXPECT_THROW(safetensors_save(path, bad), std::runtime_error);
  EXPECT_EQ(fs::file_size(path), before);
  EXPECT_THROW(write_file_atomic("/nonexistent-dir/x.safetensors", "data"), std::runtime_error);
}
