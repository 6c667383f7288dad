// cmd_classifier.cpp — `ddpm classifier train|eval`: the feature network for FID/KID on 28×28 grayscale data
// (classifier.h). `train` writes a safetensors file with its measured test accuracy; `eval` re-measures it.
#include "commands.h"

#include "ddpm/data/data.h"
#include "ddpm/nn/classifier.h"
#include "ddpm/util/runtime.h"

#include <chrono>
#include <iostream>
#include <memory>

namespace ddpm::app {
namespace {
struct ClassifierArgs {
  std::string data = "fashion-mnist", test, out = "classifier.safetensors", model, device = "auto";
  int64_t epochs = 6, batch_size = 128, threads = 0, feature_dim = 256;
  double lr = 1e-3;
  uint64_t seed = 0;
  bool no_flip = false;
};

}  // namespace

Command add_classifier(CLI::App& root) {
  auto a = std::make_shared<ClassifierArgs>();
  auto* c = root.add_subcommand("classifier", "Train or check the feature classifier used by `ddpm eval` on 28×28 data");
  c->require_subcommand(1);
  auto* tr = c->add_subcommand("train", "Train a classifier; its test accuracy goes into the file's metadata");
  tr->option_defaults()->always_capture_default();
  tr->add_option("--data", a->data, "Labelled training data (dataset spec, see ddpm train --help)");
  tr->add_option("--test", a->test, "Labelled test data (default: the spec's @test split)");
  tr->add_option("--out", a->out, "Classifier file to write (.safetensors)");
  tr->add_option("--epochs", a->epochs, "Passes over the training data")->check(CLI::PositiveNumber);
  tr->add_option("--batch-size", a->batch_size, "Images per step")->check(CLI::PositiveNumber);
  tr->add_option("--lr", a->lr, "Adam learning rate (cosine-decayed to 0)")->check(CLI::PositiveNumber);
  tr->add_option("--feature-dim", a->feature_dim, "Width of the feature layer")->check(CLI::PositiveNumber);
  tr->add_flag("--no-flip", a->no_flip, "No random horizontal flips");
  tr->add_option("--seed", a->seed, "Seed (initialisation, order, flips)");
  tr->add_option("--device", a->device, "auto | cpu | cuda");
  tr->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);
  auto* ev = c->add_subcommand("eval", "Measure a classifier's accuracy on a labelled dataset");
  ev->option_defaults()->always_capture_default();
  ev->add_option("--model", a->model, "Classifier file (.safetensors)")->required();
  ev->add_option("--data", a->test, "Labelled data (default: fashion-mnist@test)");
  ev->add_option("--device", a->device, "auto | cpu | cuda");
  ev->add_option("--threads", a->threads, "CPU threads (0: all available cores)")->check(CLI::NonNegativeNumber);

  auto run = [=]() -> int {
    const auto device = resolve_device(a->device);
    const int threads = set_threads(a->threads);
    if (ev->parsed()) {
      const std::string spec = a->test.empty() ? "fashion-mnist@test" : a->test;
      auto loaded = load_classifier(a->model, device);
      auto d = load_dataset(spec);
      const double acc = classifier_accuracy(loaded.net, d, device);
      nlohmann::json j = {{"model", a->model}, {"data", spec}, {"images", d.size()}, {"accuracy", acc}};
      if (auto it = loaded.metadata.find("test_accuracy"); it != loaded.metadata.end())
        j["recorded_test_accuracy"] = std::stod(it->second);
      std::cout << j.dump() << std::endl;
      return 0;
    }
    ensure_writable_parent(a->out, "--out");
    const std::string test_spec = a->test.empty() ? test_split_of(a->data, "--test") : a->test;
    auto train = load_dataset(a->data);
    auto test = load_dataset(test_spec);
    if (!train.labels.defined()) throw std::runtime_error("--data " + a->data + ": has no labels");
    ClassifierConfig cfg;
    cfg.channels = train.channels();
    cfg.image_size = train.height();
    cfg.num_classes = train.labels.max().item<int64_t>() + 1;
    cfg.feature_dim = a->feature_dim;
    if (train.height() != train.width() || train.height() % 4 != 0)
      throw std::runtime_error("--data " + a->data + ": images must be square with a size divisible by 4");
    ClassifierTrainOptions o;
    o.epochs = a->epochs;
    o.batch_size = a->batch_size;
    o.lr = a->lr;
    o.flip = !a->no_flip;
    o.seed = a->seed;
    o.log = &std::cerr;
    std::cerr << "training a classifier on " << a->data << " (" << train.size() << " images, " << cfg.num_classes
              << " classes), testing on " << test_spec << ", " << a->epochs << " epochs, device " << device.str()
              << ", threads " << threads << "\n";
    const auto t0 = std::chrono::steady_clock::now();
    auto net = train_classifier(train, test, cfg, o, device);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double acc = classifier_accuracy(net, test, device);
    std::map<std::string, std::string> meta = {
        {"train_data", a->data},           {"test_data", test_spec},
        {"test_accuracy", std::to_string(acc)}, {"epochs", std::to_string(a->epochs)},
        {"batch_size", std::to_string(a->batch_size)}, {"lr", std::to_string(a->lr)},
        {"seed", std::to_string(a->seed)}, {"flip", o.flip ? "true" : "false"}};
    net->to(torch::kCPU);
    save_classifier(a->out, net, meta);
    std::cout << nlohmann::json{{"out", a->out}, {"test_accuracy", acc}, {"test_data", test_spec},
                                {"seconds", secs}, {"epochs", a->epochs}}
                     .dump()
              << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
