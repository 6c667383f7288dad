// cmd_serve.cpp — `ddpm serve`: flags to ServerOptions, SIGINT/SIGTERM to a graceful stop. The server itself is
// src/ddpm/serve/ (server.h).
#include "commands.h"

#include "ddpm/nn/precision.h"
#include "ddpm/serve/server.h"
#include "ddpm/util/runtime.h"

#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <pthread.h>

namespace ddpm::app {

namespace {
struct ServeArgs {
  std::vector<std::string> checkpoints;
  std::string host = "127.0.0.1", api_key, api_key_file, data, device = "auto", precision = "fp32";
  int port = 8080, http_threads = 16, threads = 0;
  int64_t max_queue = 16, max_body_mb = 8, max_num = 64, max_steps = 1000;
  bool metrics = false, force_precision = false;
};
}  // namespace

Command add_serve(CLI::App& root) {
  auto a = std::make_shared<ServeArgs>();
  auto* c = root.add_subcommand("serve", "Serve models over HTTP: a JSON API of jobs (sample and the restoration "
                                         "verbs) with live progress, and a web page at /");
  c->option_defaults()->always_capture_default();
  c->add_option("--checkpoint", a->checkpoints, "Checkpoint or weights file to serve (repeat for several models)")
      ->required();
  c->add_option("--host", a->host, "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)");
  c->add_option("--port", a->port, "Port (0: any free port, printed on the listening line)")
      ->check(CLI::Range(0, 65535));
  auto* o_key = c->add_option("--api-key", a->api_key, "Require Authorization: Bearer KEY on every path except "
                                                       "/health and the page (beware: visible in ps; prefer --api-key-file)");
  auto* o_keyf = c->add_option("--api-key-file", a->api_key_file, "Read the API key from this file (first line)");
  o_key->excludes(o_keyf);
  c->add_option("--max-queue", a->max_queue, "Jobs that may wait; more get HTTP 429")->check(CLI::Range(1, 100000));
  c->add_option("--max-body-mb", a->max_body_mb, "Largest request body in MiB; larger get HTTP 413")
      ->check(CLI::Range(1, 1024));
  c->add_option("--max-num", a->max_num, "Largest num (images or results per input) of a job")
      ->check(CLI::Range(1, 100000));
  c->add_option("--max-steps", a->max_steps, "Largest steps of a job (also capped by each model's T)")
      ->check(CLI::Range(1, 100000));
  c->add_option("--http-threads", a->http_threads, "Connections served at once (each open event stream holds one)")
      ->check(CLI::Range(2, 1024));
  c->add_flag("--metrics", a->metrics, "Serve Prometheus metrics at GET /metrics");
  c->add_option("--data", a->data, "Dataset spec (as train --data) whose images jobs can name by data_index "
                                   "(the page's \"dataset image #\"), e.g. fashion-mnist@test");
  c->add_option("--threads", a->threads, "CPU threads of the model (0: all available cores)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--device", a->device, "auto | cpu | cuda");
  add_precision_options(c, a->precision, a->force_precision);
  c->footer("API: docs/serve.md. Stop with Ctrl-C (SIGINT) or SIGTERM: the running job is cancelled at its next "
            "model call and the server exits 0.");

  auto run = [=]() -> int {
    serve::ServerOptions o;
    o.checkpoints = a->checkpoints;
    o.host = a->host;
    o.port = a->port;
    if (!a->api_key_file.empty()) {
      std::ifstream f(a->api_key_file);
      if (!f) throw std::runtime_error("--api-key-file '" + a->api_key_file + "': cannot open the file");
      std::getline(f, o.api_key);
      while (!o.api_key.empty() && (o.api_key.back() == '\r' || o.api_key.back() == ' ')) o.api_key.pop_back();
      if (o.api_key.empty()) throw std::runtime_error("--api-key-file '" + a->api_key_file + "': the first line is empty");
    } else {
      o.api_key = a->api_key;
    }
    o.max_queue = static_cast<size_t>(a->max_queue);
    o.max_body_mb = static_cast<size_t>(a->max_body_mb);
    o.http_threads = a->http_threads;
    o.metrics = a->metrics;
    o.data = a->data;
    o.limits.max_num = a->max_num;
    o.limits.max_steps = a->max_steps;
    const auto device = resolve_device(a->device);
    o.device = device.str();
    o.precision = parse_precision(a->precision);
    check_precision(o.precision, device, a->force_precision);
    const int threads = set_threads(a->threads);
    o.log = [](const std::string& line) { std::cerr << "ddpm serve: " << line << std::endl; };

    // Every thread started from here on inherits the blocked signals; this thread takes them with sigwait.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    serve::Server server(o);
    const int port = server.start();
    std::cerr << "ddpm serve: loading " << o.checkpoints.size() << (o.checkpoints.size() == 1 ? " model" : " models")
              << " (device " << o.device << ", " << precision_name(o.precision) << ", threads " << threads << ")"
              << std::endl;
    server.load();
    std::cerr << "ddpm serve: listening on http://" << (o.host == "0.0.0.0" ? "127.0.0.1" : o.host) << ":" << port
              << (o.api_key.empty() ? "" : " (API key required)") << std::endl;
    int sig = 0;
    sigwait(&sigs, &sig);
    std::cerr << "ddpm serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": stopping" << std::endl;
    server.stop();
    std::cerr << "ddpm serve: stopped" << std::endl;
    return 0;
  };
  return {c, run};
}

}  // namespace ddpm::app
