// test_config.cpp — presets, TOML (unknown keys are errors), JSON round trip, validation.
#include "ddpm/config.h"

#include <gtest/gtest.h>

using namespace ddpm;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, PresetsAndUnknownPreset) {
  EXPECT_EQ(preset_model("cifar10").ch, 128);
  EXPECT_EQ(preset_model("fmnist").attn_resolutions, std::vector<int64_t>{14});
  auto msg = error_of([] { preset_model("huge"); });
  EXPECT_NE(msg.find("unknown preset 'huge'"), std::string::npos);
  EXPECT_NE(msg.find("fmnist-small"), std::string::npos);
}

TEST(Config, TomlOverridesAndPreset) {
  Config c;
  apply_toml_string(c, R"(
preset = "tiny"
[model]
dropout = 0.2
[train]
steps = 123
lr = 1e-3
flip = true
)", "t.toml");
  EXPECT_EQ(c.preset, "tiny");
  EXPECT_EQ(c.model.ch_mult, (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(c.model.dropout, 0.2);
  EXPECT_EQ(c.train.steps, 123);
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_TRUE(c.train.flip);
}

TEST(Config, UnknownKeysAndWrongTypesAreErrors) {
  Config c;
  EXPECT_NE(error_of([&] { apply_toml_string(c, "[train]\nstesp = 5\n", "a.toml"); }).find("unknown key 'train.stesp'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_toml_string(c, "[optimizer]\nlr = 5\n", "b.toml"); }).find("unknown key 'optimizer'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_toml_string(c, "[train]\nsteps = \"many\"\n", "c.toml"); }).find("expected an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { apply_toml_string(c, "[train\nsteps = 1\n", "d.toml"); }).find("d.toml"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_toml_file(c, "/nonexistent.toml"); }).find("cannot open"), std::string::npos);
}

TEST(Config, TomlAndJsonRoundTrip) {
  Config c;
  c.preset = "tiny";
  c.model = preset_model("tiny");
  c.train.steps = 77;
  c.train.seed = 12345;
  c.diffusion.schedule = "cosine";
  Config d;
  apply_toml_string(d, to_toml(c), "roundtrip");
  EXPECT_EQ(to_json(d), to_json(c));
  EXPECT_EQ(to_json(config_from_json(to_json(c))), to_json(c));
}

TEST(Config, ValidationNamesTheField) {
  Config c;
  c.train.steps = 0;
  EXPECT_NE(error_of([&] { validate(c); }).find("train.steps"), std::string::npos);
  c = Config();
  c.train.batch_size = -1;
  EXPECT_NE(error_of([&] { validate(c); }).find("train.batch_size"), std::string::npos);
  c = Config();
  c.model.ch = 48;
  EXPECT_NE(error_of([&] { validate(c); }).find("model.ch"), std::string::npos);
  c = Config();
  c.model.image_size = 30;
  c.model.ch_mult = {1, 2, 2};
  EXPECT_NE(error_of([&] { validate(c); }).find("divisible"), std::string::npos);
  EXPECT_NO_THROW(validate(Config()));
}
