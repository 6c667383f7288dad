// server.h — `ddpm serve`: the HTTP API and the web page over the job store and one worker thread (design notes
// §8). HTTP from Debian's cpp-httplib 0.11.4; its pool threads parse, check and queue; the worker owns the models
// and runs the jobs in order. Our limits sit in front of the library (body size, no chunked bodies, header sizes,
// JSON nesting, a foreign Origin on a loopback bind, the API key). Not here: parsing a job (job.h), running one
// (run_job.h), flags and signals (app/cmd_serve.cpp).
#pragma once

#include "ddpm/nn/precision.h"
#include "ddpm/serve/job.h"
#include "ddpm/serve/jobs.h"
#include "ddpm/serve/models.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace ddpm::serve {

struct ServerOptions {
  std::vector<std::string> checkpoints;
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port
  std::string api_key;             // "" = none; else Authorization: Bearer KEY on every path but /health and /
  size_t max_queue = 16;           // queued jobs before 429
  size_t max_body_mb = 8;
  int http_threads = 16;           // connections served at once (each open event stream holds one)
  bool metrics = false;            // GET /metrics
  std::string data;                // dataset spec for data_index and GET /v1/data/{i} ("" = none)
  std::string device = "cpu";      // resolved device name
  Precision precision = Precision::fp32;
  RequestLimits limits;
  int heartbeat_ms = 2000;         // event streams: a comment line after this long without events
  int read_timeout_s = 10, write_timeout_s = 10, keep_alive_s = 5;
  size_t max_header_bytes = 16384; // request line + headers
  size_t max_json_depth = 32;
  size_t keep_finished = 256;      // finished jobs kept for GET /v1/jobs/{id}
  std::function<void(const std::string&)> log;  // one line per event worth logging (stderr in the CLI)
};

class Server {
 public:
  explicit Server(ServerOptions o);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket and starts answering (GET /health says 503 until the models are loaded). -> the port.
  int start();
  // Loads every checkpoint and the data, then starts the worker; /health turns 200. Throws naming the file.
  void load();
  // Stops accepting, cancels the queued and the running job, ends the event streams, joins every thread.
  void stop();
  int port() const { return port_; }
  bool ready() const { return ready_; }
  JobStore& store() { return *store_; }

 private:
  void routes();
  void worker_loop();
  ServerOptions o_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<JobStore> store_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::unique_ptr<DataSource> data_;
  std::thread http_thread_, worker_;
  std::atomic<bool> ready_{false}, stopping_{false};
  int port_ = 0;
  int listen_fd_ = -1;  // the listening socket, seen by the socket-options hook (start() raises its backlog)
};

// The web page (src/ddpm/serve/web/index.html, embedded at build time).
const std::string& web_page();

// Checks that a JSON text nests arrays and objects at most `max_depth` deep (strings skipped) before it is
// parsed, so a hostile body cannot exhaust the parser's stack.
bool json_depth_ok(const std::string& text, size_t max_depth);

}  // namespace ddpm::serve
