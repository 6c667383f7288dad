// test_config.cpp — presets, TOML (unknown keys are errors), JSON round trip, validation.
#include "ddpm/util/config.h"

#include <gtest/gtest.h>

#include <algorithm>

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

TEST(Config, NewFieldsRoundTripAndOldCheckpointsLoad) {
  Config c;
  c.train.tensorboard = false;
  c.train.cache = "/tmp/x.bin";
  c.train.allow_upscale = true;
  c.train.skip_bad_images = true;
  Config d;
  apply_toml_string(d, to_toml(c), "roundtrip");
  EXPECT_EQ(to_json(d), to_json(c));
  // A checkpoint written before these keys existed: its config JSON lacks them, and they take their defaults.
  auto j = to_json(Config{});
  for (const char* k : {"tensorboard", "cache", "allow_upscale", "skip_bad_images"}) j["train"].erase(k);
  EXPECT_EQ(to_json(config_from_json(j)), to_json(Config{}));
}

TEST(Config, OverridePrecedenceDefaultsThenPresetThenFile) {
  // The file's preset replaces the model, its [model] keys override the preset, later files override earlier.
  Config c;
  apply_toml_string(c, "preset = \"tiny\"\n[model]\nch = 64\n[train]\nlr = 0.001\n", "a.toml");
  EXPECT_EQ(c.model.ch, 64);
  EXPECT_EQ(c.model.ch_mult, preset_model("tiny").ch_mult);
  EXPECT_DOUBLE_EQ(c.train.lr, 0.001);
  EXPECT_EQ(c.train.steps, Config{}.train.steps);  // untouched keys keep their defaults
  apply_toml_string(c, "[train]\nlr = 0.002\n", "b.toml");
  EXPECT_DOUBLE_EQ(c.train.lr, 0.002);
  EXPECT_EQ(c.model.ch, 64);
}

TEST(Config, ResumeDifferencesListChangedFieldsOnly) {
  Config run;
  Config now = run;
  EXPECT_TRUE(resume_differences(run, now).empty());
  // What a resumed run may change is not a difference.
  now.train.steps = run.train.steps * 2;
  now.train.out = "elsewhere";
  now.train.threads = 7;
  now.train.sample_every = 3;
  now.train.tensorboard = !run.train.tensorboard;
  EXPECT_TRUE(resume_differences(run, now).empty());
  now.train.lr = 1e-3;
  now.model.ch = 32;
  now.train.data = "mnist:/x";
  const auto d = resume_differences(run, now);
  ASSERT_EQ(d.size(), 3u);
  auto has = [&](const std::string& s) { return std::find(d.begin(), d.end(), s) != d.end(); };
  EXPECT_TRUE(has("model.ch: 64 -> 32"));
  EXPECT_TRUE(has("train.lr: 0.0002 -> 0.001"));
  EXPECT_TRUE(has("train.data: \"fashion-mnist\" -> \"mnist:/x\""));
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
  c = Config();
  c.train.lr_schedule = "step";
  EXPECT_NE(error_of([&] { validate(c); }).find("train.lr_schedule must be constant, cosine or linear, got 'step'"),
            std::string::npos);
  c = Config();
  c.train.loss_weight = "p2";
  EXPECT_NE(error_of([&] { validate(c); }).find("train.loss_weight"), std::string::npos);
  c = Config();
  c.train.min_snr_gamma = 0;
  EXPECT_NE(error_of([&] { validate(c); }).find("train.min_snr_gamma"), std::string::npos);
  EXPECT_NO_THROW(validate(Config()));
}
