// cmd_noise.cpp — `ddpm noise`: the forward process q(x_t | x_0) of one image at a row of t values.
#include "commands.h"

#include "ddpm/data/data.h"
#include "ddpm/diffusion/schedule.h"
#include "ddpm/io/image_io.h"
#include "ddpm/util/runtime.h"

#include <iostream>
#include <memory>

namespace ddpm::app {
namespace {
struct NoiseArgs {
  std::string image, data = "fashion-mnist", schedule = "linear", out = "noise.png";
  int64_t index = 0, timesteps = 1000, scale = 3;
  std::vector<int64_t> ts;
  uint64_t seed = 0;
};
}  // namespace

Command add_noise(CLI::App& root) {
  auto a = std::make_shared<NoiseArgs>();
  auto* c = root.add_subcommand("noise", "Picture the forward (noising) process of one image");
  c->option_defaults()->always_capture_default();
  auto* o_img = c->add_option("--image", a->image, "A PNG/JPEG image to noise")->check(CLI::ExistingFile);
  auto* o_data = c->add_option("--data", a->data, "Dataset spec to take the image from (default fashion-mnist)");
  c->add_option("--index", a->index, "Index of the image in --data")->check(CLI::NonNegativeNumber);
  o_img->excludes(o_data);
  c->add_option("--schedule", a->schedule, "Beta schedule: linear | cosine")->check(CLI::IsMember({"linear", "cosine"}));
  c->add_option("--timesteps", a->timesteps, "Diffusion steps T")->check(CLI::Range(int64_t(2), int64_t(100000)));
  c->add_option("--t", a->ts, "Timesteps to show (0-based); default 0 and 9 more spread over T")->delimiter(',');
  c->add_option("--seed", a->seed, "Seed of the noise");
  c->add_option("--scale", a->scale, "Enlarge by this integer factor")->check(CLI::PositiveNumber);
  c->add_option("--out", a->out, "PNG to write");

  auto run = [=]() -> int {
    ensure_writable_parent(a->out, "--out");
    torch::Tensor img;  // [C,H,W] uint8
    if (!a->image.empty()) {
      img = load_image(a->image);
      if (img.size(0) == 4) img = img.slice(0, 0, 3);  // drop alpha
      if (img.size(0) == 2) img = img.slice(0, 0, 1);
    } else {
      auto d = load_dataset(a->data);
      if (a->index >= d.size())
        throw std::runtime_error("--index " + std::to_string(a->index) + " is out of range for '" + d.name + "' (" +
                                 std::to_string(d.size()) + " images)");
      img = d.images[a->index];
    }
    const Schedule s(parse_beta_schedule(a->schedule), a->timesteps);
    auto ts = a->ts;
    if (ts.empty())
      for (double f : {0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0})
        ts.push_back(static_cast<int64_t>(f * static_cast<double>(s.T - 1) + 0.5));
    for (auto t : ts)
      if (t < 0 || t >= s.T)
        throw std::runtime_error("--t " + std::to_string(t) + " is outside [0, " + std::to_string(s.T - 1) + "]");
    const int64_t n = static_cast<int64_t>(ts.size());
    auto x0 = to_model_range(img.unsqueeze(0)).expand({n, -1, -1, -1});        // [n,C,H,W]
    auto gen = make_generator(a->seed);
    auto eps = torch::randn({1, img.size(0), img.size(1), img.size(2)}, gen).expand({n, -1, -1, -1});  // same ε for all t
    auto t = torch::tensor(ts, torch::kLong);                                   // [n]
    auto x_t = s.q_sample(x0, t, eps);                                           // [n,C,H,W]
    save_png(a->out, upscale(make_grid(to_uint8(x_t), n), a->scale));
    std::cerr << "wrote " << a->out << " (" << to_string(s.kind) << " schedule, T = " << s.T << ", t = ";
    for (size_t i = 0; i < ts.size(); ++i) std::cerr << (i ? "," : "") << ts[i];
    std::cerr << ")\n";
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
