// cmd_train.cpp — `ddpm train`: config (preset < TOML file < flags), dataset, run directory, Trainer.
#include "commands.h"

#include "ddpm/eval/evaluate.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/safetensors.h"
#include "ddpm/samplers/registry.h"
#include "ddpm/train/distributed.h"
#include "ddpm/train/fault_injection.h"
#include "ddpm/train/launcher.h"
#include "ddpm/train/run_log.h"
#include "ddpm/train/trainer.h"
#include "ddpm/util/runtime.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>

namespace ddpm::app {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  if (g_stop.exchange(true)) _exit(130);  // second Ctrl-C: leave at once
  const char msg[] = "\nddpm: stopping after this step and saving a checkpoint (Ctrl-C again to quit now)\n";
  (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
}

struct TrainArgs {
  std::string config_file, preset, data, out, device, schedule, prediction, init, cache;
  int64_t eval_every = 0, eval_samples = 0, eval_steps = 0;
  std::string eval_sampler, eval_ref, eval_features;
  int64_t keep_checkpoints = 0, max_nonfinite = 0;
  int64_t steps = 0, batch_size = 0, save_every = 0, sample_every = 0, threads = 0, warmup = 0, log_every = 0,
          sample_num = 0, timesteps = 0, num_classes = 0, channels = 0, image_size = 0;
  double lr = 0, ema_decay = 0, label_dropout = 0;
  uint64_t seed = 0;
  bool resume = false, flip = false, tensorboard = true, allow_upscale = false, skip_bad = false, force_precision = false;
  std::string precision, lr_schedule, loss_weight;
  double min_snr_gamma = 0;
  // Several processes (distributed.h, launcher.h).
  int nproc = 1, master_port = 0;
  std::string master_addr = "127.0.0.1";
  DistOptions dist;
};

}  // namespace

Command add_train(CLI::App& root) {
  auto a = std::make_shared<TrainArgs>();
  {  // Shown as defaults in --help; the values actually used come from Config (preset < TOML < flags).
    const Config d;
    a->preset = d.preset, a->data = d.train.data, a->out = d.train.out, a->device = d.train.device;
    a->schedule = d.diffusion.schedule, a->steps = d.train.steps, a->batch_size = d.train.batch_size;
    a->save_every = d.train.save_every, a->sample_every = d.train.sample_every, a->threads = d.train.threads;
    a->precision = d.train.precision;
    a->warmup = d.train.warmup, a->log_every = d.train.log_every, a->sample_num = d.train.sample_num;
    a->timesteps = d.diffusion.timesteps, a->lr = d.train.lr, a->ema_decay = d.train.ema_decay;
    a->seed = d.train.seed, a->flip = d.train.flip;
    a->prediction = d.diffusion.prediction, a->num_classes = d.model.num_classes;
    a->eval_every = d.train.eval_every, a->eval_samples = d.train.eval_samples, a->eval_steps = d.train.eval_steps;
    a->eval_sampler = d.train.eval_sampler;
    a->label_dropout = d.train.label_dropout;
    a->lr_schedule = d.train.lr_schedule, a->loss_weight = d.train.loss_weight, a->min_snr_gamma = d.train.min_snr_gamma;
    a->keep_checkpoints = d.train.keep_checkpoints, a->max_nonfinite = d.train.max_nonfinite;
    a->channels = d.model.channels, a->image_size = d.model.image_size, a->tensorboard = d.train.tensorboard;
  }
  auto* c = root.add_subcommand("train", "Train a noise predictor (UNet or DiT, L_simple) and write a run directory");
  c->option_defaults()->always_capture_default();
  c->add_option("--config", a->config_file,
                "TOML config file, or the name of an installed preset config (fmnist-small, cifar10, ...: "
                "share/ddpm/configs/NAME.toml); flags override it");
  auto* o_preset = c->add_option("--preset", a->preset,
                                 "Model preset: cifar10, fmnist, fmnist-small, tiny (UNets), dit-fmnist, dit-cifar (DiTs)");
  auto* o_data = c->add_option("--data", a->data,
                               "Dataset spec: fashion-mnist[:DIR][@train|@test], mnist:DIR, cifar10:DIR[@train|@test], "
                               "images:DIR (PNG/JPEG folder, recursive)");
  auto* o_chan = c->add_option("--channels", a->channels, "Image channels: 1 (grayscale) or 3 (RGB); folders are converted")
                     ->check(CLI::IsMember({1, 3}));
  auto* o_size = c->add_option("--image-size", a->image_size, "Image side H = W of the model; folders are resized to it")
                     ->check(CLI::PositiveNumber);
  auto* o_cache = c->add_option("--cache", a->cache,
                                "images:DIR: the decoded-image cache file (default: data-cache.bin in --out)");
  auto* o_upscale = c->add_flag("--allow-upscale", a->allow_upscale,
                                "images:DIR: accept images whose shorter side is below --image-size (else an error)");
  auto* o_skipbad = c->add_flag("--skip-bad-images", a->skip_bad,
                                "images:DIR: report unreadable files and skip them (else they stop the run before training)");
  auto* o_tb = c->add_flag("--tensorboard,!--no-tensorboard", a->tensorboard,
                           "Write TensorBoard events to --out/tensorboard (tensorboard --logdir OUT)");
  auto* o_out = c->add_option("--out", a->out, "Run directory (checkpoint.safetensors, config.toml, metrics.jsonl, samples/)");
  auto* o_steps = c->add_option("--steps", a->steps, "Total optimisation steps of the run");
  auto* o_bs = c->add_option("--batch-size", a->batch_size, "Global batch size");
  auto* o_lr = c->add_option("--lr", a->lr, "Adam learning rate after warm-up");
  auto* o_warm = c->add_option("--warmup", a->warmup, "Linear learning-rate warm-up steps");
  auto* o_lrs = c->add_option("--lr-schedule", a->lr_schedule,
                              "After warm-up: constant | cosine | linear (both decay to 0 at --steps)")
                   ->check(CLI::IsMember({"constant", "cosine", "linear"}));
  auto* o_lw = c->add_option("--loss-weight", a->loss_weight,
                             "uniform (L_simple) | min_snr (min(SNR, gamma) in x0 terms, Hang et al. 2023)")
                   ->check(CLI::IsMember({"uniform", "min_snr"}));
  auto* o_gamma = c->add_option("--min-snr-gamma", a->min_snr_gamma, "gamma of --loss-weight min_snr")
                      ->check(CLI::PositiveNumber);
  auto* o_ema = c->add_option("--ema-decay", a->ema_decay, "EMA decay (with warm-up)");
  auto* o_seed = c->add_option("--seed", a->seed, "Seed of every random draw of the run");
  auto* o_dev = c->add_option("--device", a->device, "auto | cpu | cuda");
  auto* o_save = c->add_option("--save-every", a->save_every, "Checkpoint every N steps (0: only at the end)");
  auto* o_keep = c->add_option("--keep-checkpoints", a->keep_checkpoints,
                                "Also keep the last K step-numbered checkpoints (checkpoint-00001000.safetensors)");
  auto* o_nonf = c->add_option("--max-nonfinite", a->max_nonfinite,
                               "Stop after N non-finite losses/gradients in a row (skipped steps; 0: never stop)");
  auto* o_samp = c->add_option("--sample-every", a->sample_every, "Sample grid every N steps (0: only at the end)");
  auto* o_snum = c->add_option("--sample-num", a->sample_num, "Images per sample grid");
  auto* o_log = c->add_option("--log-every", a->log_every, "Log line and metrics.jsonl record every N steps");
  auto* o_thr = c->add_option("--threads", a->threads, "CPU threads (0: all available cores)");
  auto* o_prec = add_precision_options(c, a->precision, a->force_precision);
  auto* o_sched = c->add_option("--schedule", a->schedule, "Beta schedule: linear | cosine");
  auto* o_T = c->add_option("--timesteps", a->timesteps, "Diffusion steps T");
  auto* o_pred = c->add_option("--prediction", a->prediction, "What the network predicts: eps | x0 | v (v = √ᾱ ε − √(1−ᾱ) x_0)")
                     ->check(CLI::IsMember({"eps", "x0", "v"}));
  auto* o_K = c->add_option("--num-classes", a->num_classes,
                            "Class-conditional model with K classes (labels from the dataset); 0 = unconditional")
                  ->check(CLI::NonNegativeNumber);
  auto* o_pdrop = c->add_option("--label-dropout", a->label_dropout,
                                "Class-conditional: probability per sample of the null label (for guidance)")
                      ->check(CLI::Range(0.0, 0.999999));
  auto* o_flip = c->add_flag("--flip,!--no-flip", a->flip, "Random horizontal flips");
  c->add_option("--init", a->init,
                "Start from these weights (fine-tuning; new parameters keep their initialisation: a new label "
                "embedding has random class rows and a zero null row)")
      ->check(CLI::ExistingFile);
  auto* ge = c->add_option_group("Evaluation during training", "FID/KID of generated images (see ddpm eval)");
  auto* o_ev = ge->add_option("--eval-every", a->eval_every,
                              "Every N steps (and at the end): generate --eval-samples images, log FID/KID to "
                              "metrics.jsonl, keep the best EMA weights by FID in OUT/best.safetensors (0: off)")
                   ->check(CLI::NonNegativeNumber);
  auto* o_evn = ge->add_option("--eval-samples", a->eval_samples, "Images per evaluation")->check(CLI::Range(int64_t(2), int64_t(1) << 40));
  auto* o_evs = ge->add_option("--eval-sampler", a->eval_sampler, "Sampler of the evaluation images")
                    ->check(CLI::IsMember(sampler_names()));
  auto* o_evk = ge->add_option("--eval-steps", a->eval_steps, "Its steps")->check(CLI::PositiveNumber);
  auto* o_evr = ge->add_option("--eval-ref", a->eval_ref, "Reference images (default: the test split of --data)");
  auto* o_evf = ge->add_option("--eval-features", a->eval_features,
                               "Feature network NAME|FILE (default: fmnist-classifier for 1×28×28, else inception)");
  c->add_flag("--resume", a->resume, "Continue the run in --out from its checkpoint (to --steps in total)");
  auto* g = c->add_option_group("Multiple processes", "Data-parallel training on c10d (see README)");
  g->add_option("--nproc", a->nproc,
                "Start N worker processes on this machine (ranks of one run; --batch-size is the global batch). "
                "Under torchrun or srun leave it at 1: the rank comes from the environment")
      ->check(CLI::Range(1, 1024));
  g->add_option("--dist-backend", a->dist.backend, "c10d backend: auto (nccl for CUDA if built in, else gloo) | gloo | nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}));
  g->add_option("--dist-timeout", a->dist.timeout_s,
                "Seconds a rendezvous or collective may wait for the other ranks before the run stops with an error")
      ->check(CLI::PositiveNumber);
  g->add_option("--bucket-mb", a->dist.bucket_mb, "Gradient all-reduce bucket size in MiB (0: one bucket)")
      ->check(CLI::NonNegativeNumber);
  g->add_option("--master-addr", a->master_addr, "--nproc: address of rank 0's rendezvous store");
  g->add_option("--master-port", a->master_port, "--nproc: its port (0: a free one)")->check(CLI::Range(0, 65535));

  auto run = [=]() -> int {
    // preset < TOML file < flags, over `base`: the defaults, or on --resume the run's own config.
    const std::string config_path = a->config_file.empty() ? std::string() : resolve_config_file(a->config_file);
    auto build = [&](Config cfg) {
    if (!config_path.empty()) apply_toml_file(cfg, config_path);
    if (o_preset->count()) {
      cfg.model = preset_model(a->preset);
      cfg.preset = a->preset;
    }
    auto& t = cfg.train;
    if (o_data->count()) t.data = a->data;
    if (o_out->count()) t.out = a->out;
    if (o_steps->count()) t.steps = a->steps;
    if (o_bs->count()) t.batch_size = a->batch_size;
    if (o_lr->count()) t.lr = a->lr;
    if (o_warm->count()) t.warmup = a->warmup;
    if (o_ema->count()) t.ema_decay = a->ema_decay;
    if (o_lrs->count()) t.lr_schedule = a->lr_schedule;
    if (o_lw->count()) t.loss_weight = a->loss_weight;
    if (o_gamma->count()) t.min_snr_gamma = a->min_snr_gamma;
    if (o_seed->count()) t.seed = a->seed;
    if (o_dev->count()) t.device = a->device;
    if (o_save->count()) t.save_every = a->save_every;
    if (o_keep->count()) t.keep_checkpoints = a->keep_checkpoints;
    if (o_nonf->count()) t.max_nonfinite = a->max_nonfinite;
    if (o_samp->count()) t.sample_every = a->sample_every;
    if (o_snum->count()) t.sample_num = a->sample_num;
    if (o_log->count()) t.log_every = a->log_every;
    if (o_thr->count()) t.threads = a->threads;
    if (o_prec->count()) t.precision = a->precision;
    if (o_flip->count()) t.flip = a->flip;
    if (o_sched->count()) cfg.diffusion.schedule = a->schedule;
    if (o_T->count()) cfg.diffusion.timesteps = a->timesteps;
    if (o_pred->count()) cfg.diffusion.prediction = a->prediction;
    if (o_K->count()) cfg.model.num_classes = a->num_classes;
    if (o_pdrop->count()) t.label_dropout = a->label_dropout;
    if (o_chan->count()) cfg.model.channels = a->channels;
    if (o_size->count()) cfg.model.image_size = a->image_size;
    if (o_cache->count()) t.cache = a->cache;
    if (o_upscale->count()) t.allow_upscale = a->allow_upscale;
    if (o_skipbad->count()) t.skip_bad_images = a->skip_bad;
    if (o_tb->count()) t.tensorboard = a->tensorboard;
    if (o_ev->count()) t.eval_every = a->eval_every;
    if (o_evn->count()) t.eval_samples = a->eval_samples;
    if (o_evs->count()) t.eval_sampler = a->eval_sampler;
    if (o_evk->count()) t.eval_steps = a->eval_steps;
    if (o_evr->count()) t.eval_ref = a->eval_ref;
    if (o_evf->count()) t.eval_features = a->eval_features;
    return cfg;
    };
    Config cfg = build(Config{});
    const fs::path out(cfg.train.out);
    const auto ckpt = (out / "checkpoint.safetensors").string();
    const bool have_ckpt = fs::exists(ckpt);
    if (have_ckpt && !a->resume)
      throw std::runtime_error("--out '" + cfg.train.out + "' already holds a run (checkpoint.safetensors); pass --resume to "
                               "continue it or choose another --out");
    std::optional<Checkpoint> resume_from, init_from;
    if (have_ckpt) {
      resume_from = load_checkpoint(ckpt);  // fail early on a corrupt checkpoint, before writing anything
      // A resumed run continues the run's own config; what the command line or --config changes is checked.
      const Config& was = resume_from->config;
      cfg = build(was);
      cfg.train.out = out.string();
      const auto diff = resume_differences(was, cfg);
      if (!diff.empty()) {
        std::string list, allowed;
        for (const auto& d : diff) list += (list.empty() ? "" : "; ") + d;
        for (const auto& f : resume_mutable_fields()) allowed += (allowed.empty() ? "" : ", ") + f.substr(f.find('.') + 1);
        throw std::runtime_error("--resume: the run in " + out.string() + " was made with another config (" + list +
                                 "); a resumed run may change only " + allowed +
                                 "; to train differently start a new run with another --out (--init to start from its weights)");
      }
    }
    validate(cfg);
    auto& t = cfg.train;

    // Everything that can fail on input is checked before the run directory is touched (by the launcher
    // too, so that a bad flag gives one error, not one per worker).
    const DistEnv env = dist_env_from_environment();
    const bool launching = a->nproc > 1 && !env.active;
    DatasetOptions dopt;
    dopt.image_size = cfg.model.image_size;
    dopt.channels = cfg.model.channels;
    dopt.labels = cfg.model.num_classes > 0;
    dopt.allow_upscale = t.allow_upscale;
    dopt.skip_bad = t.skip_bad_images;
    dopt.log = env.active && env.rank != 0 ? nullptr : &std::cerr;
    const bool folder = is_image_folder_spec(t.data);
    const bool out_existed = fs::exists(out);
    if (folder) {
      dopt.cache = t.cache.empty() ? (out / "data-cache.bin").string() : t.cache;
      const auto parent = fs::path(dopt.cache).parent_path();
      ensure_writable_dir(parent.empty() ? "." : parent.string(), "--cache");
    }
    Dataset data;
    try {
      data = load_dataset(t.data, dopt);
    } catch (...) {
      std::error_code ec;
      if (folder && !out_existed) fs::remove(out, ec);  // only succeeds if empty: nothing of a run is lost
      throw;
    }
    if (folder && cfg.model.num_classes > 0 && static_cast<int64_t>(data.class_names.size()) != cfg.model.num_classes) {
      std::string names;
      for (const auto& n : data.class_names) names += (names.empty() ? "" : ", ") + n;
      throw std::runtime_error("dataset '" + t.data + "' has " + std::to_string(data.class_names.size()) +
                               " class folders (" + names + ") but --num-classes is " + std::to_string(cfg.model.num_classes));
    }
    check_dataset_matches(data, cfg.model);
    auto device = resolve_device(t.device);
    if (env.active && device.is_cuda()) device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
    // The launcher checks what its workers would each reject (the Trainer checks it again in every worker).
    if (launching) {
      resolve_backend(a->dist.backend, device);
      if (t.batch_size % a->nproc != 0)
        throw std::runtime_error("--batch-size " + std::to_string(t.batch_size) + " (the global batch) is not divisible by the " +
                                 std::to_string(a->nproc) + " processes");
    }
    // Evaluation during training: its sampler, reference and feature network are checked before anything runs.
    std::string eval_ref, eval_features;
    if (t.eval_every > 0) {
      SamplerOptions so;
      so.name = t.eval_sampler;
      so.steps = t.eval_steps;
      try {
        check_sampler_options(so, cfg.diffusion.timesteps);
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("--eval-sampler/--eval-steps: ") + e.what());
      }
      eval_ref = t.eval_ref.empty() ? test_split_of(t.data, "--eval-ref") : t.eval_ref;
      eval_features = resolve_features(t.eval_features.empty()
                                           ? default_features_for(cfg.model.channels, cfg.model.image_size, cfg.model.image_size)
                                           : t.eval_features,
                                       "--eval-features");
    }
    check_precision(parse_precision(t.precision), device, a->force_precision);
    // Workers on one machine share its cores: each gets its part unless --threads says otherwise.
    set_threads(t.threads == 0 && env.active ? std::max(1, available_cores() / std::max(1, env.local_world_size))
                                             : t.threads);
    if (!a->init.empty() && !have_ckpt) init_from = load_checkpoint(a->init);  // on resume, the run's own state wins
    if (launching) {
      ensure_writable_dir(t.out, "--out");
      LaunchOptions lo;
      lo.nproc = a->nproc;
      lo.master_addr = a->master_addr;
      lo.master_port = a->master_port;
      lo.log = &std::cerr;
      return launch_local_workers(program_args(), lo);
    }
    // Rendezvous (several processes) before rank 0 writes anything: by then every rank has passed the checks.
    auto comm = make_communicator(env, a->dist, device);
    const bool rank0 = comm->rank() == 0;
    if (rank0) ensure_writable_dir(t.out, "--out");
    if (rank0 && env.active)
      std::cerr << "rendezvous: " << env.world_size << " processes (" << env.source << " variables), store at "
                << env.master_addr << ":" << env.master_port << "\n";

    // Rank 0 evaluates: the feature network and the reference statistics (cached: features.h) are ready first.
    std::function<nlohmann::json(const torch::Tensor&)> evaluator;
    if (rank0 && t.eval_every > 0)
      evaluator = make_training_evaluator(eval_features, eval_ref, default_ref_cache(eval_ref, eval_features, 0),
                                          cfg.model.channels, cfg.model.image_size, device, &std::cerr);

    const std::vector<std::string> trainer_classes = data.class_names;
    Trainer trainer(cfg, std::move(data), device, comm);
    trainer.evaluator = std::move(evaluator);
    trainer.set_grad_bucket_mb(a->dist.bucket_mb);
    install_test_faults(trainer);  // DDPM_TEST_NAN_STEPS: a testing aid, see fault_injection.h
    if (have_ckpt) {
      trainer.load(*resume_from);
      if (rank0) std::cerr << "resuming " << ckpt << " at step " << trainer.step() << "\n";
    } else if (a->resume && rank0) {
      std::cerr << "no checkpoint in " << t.out << " yet; starting a new run\n";
    }
    if (init_from) {
      const auto fresh = trainer.init_from(*init_from);
      if (rank0) {
        std::cerr << "initialised from " << a->init << " (step " << init_from->step << ")";
        for (size_t i = 0; i < fresh.size(); ++i) std::cerr << (i ? ", " : "; new: ") << fresh[i];
        std::cerr << "\n";
      }
    }
    if (rank0) write_run_config(out.string(), cfg, trainer_classes);

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    TrainHooks hooks;
    hooks.stop = &g_stop;
    hooks.log = rank0 ? &std::cerr : nullptr;
    hooks.tty = stderr_is_tty();
    const bool finished = trainer.run(hooks);
    return finished ? 0 : 130;
  };
  return {c, run};
}

}  // namespace ddpm::app
