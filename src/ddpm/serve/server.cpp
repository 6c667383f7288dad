// server.cpp — see server.h.
#include "ddpm/serve/server.h"

#include "ddpm/data/data.h"
#include "ddpm/io/image_io.h"
#include "ddpm/samplers/registry.h"
#include "ddpm/serve/run_job.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>

namespace ddpm::serve {

namespace {

void json_reply(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void error_reply(httplib::Response& res, int status, const std::string& msg) {
  std::string line = msg;
  std::replace(line.begin(), line.end(), '\n', ' ');
  json_reply(res, status, {{"error", line}});
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Constant-time comparison of the API key.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char d = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(b.size(), 1)]);
  return d == 0 && !b.empty();
}

std::string sse(const std::string& event, const nlohmann::json& data) {
  return "event: " + event + "\ndata: " + data.dump() + "\n\n";
}

}  // namespace

bool json_depth_ok(const std::string& t, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : t) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

Server::Server(ServerOptions o) : o_(std::move(o)) {
  store_ = std::make_unique<JobStore>(o_.max_queue, o_.keep_finished);
  http_ = std::make_unique<httplib::Server>();
  if (!o_.log) o_.log = [](const std::string&) {};
}

Server::~Server() { stop(); }

int Server::start() {
  const int threads = std::max(o_.http_threads, 2);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_read_timeout(o_.read_timeout_s, 0);
  http_->set_write_timeout(o_.write_timeout_s, 0);
  http_->set_keep_alive_timeout(o_.keep_alive_s);
  http_->set_tcp_nodelay(true);  // headers and body go out as separate writes: no Nagle wait between them
  http_->set_payload_max_length(o_.max_body_mb * 1024 * 1024);
  routes();
  // httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's library): a burst of
  // connects while the accept thread waits for a core overflows it, and the kernel then drops or resets some of
  // them (clients see "no response"). The socket-options hook sees the listening socket; listen() again on it after
  // the bind raises the backlog (a listening socket takes a new backlog from a second listen()).
  http_->set_socket_options([this](socket_t s) {
    httplib::default_socket_options(s);
    listen_fd_ = static_cast<int>(s);
  });
  if (o_.port == 0) {
    port_ = http_->bind_to_any_port(o_.host);
    if (port_ <= 0) throw std::runtime_error("--host " + o_.host + ": cannot bind a port");
  } else {
    if (!http_->bind_to_port(o_.host, o_.port))
      throw std::runtime_error("--host " + o_.host + " --port " + std::to_string(o_.port) +
                               ": cannot bind (in use, or not an address of this machine)");
    port_ = o_.port;
  }
  if (listen_fd_ >= 0 && ::listen(listen_fd_, SOMAXCONN) != 0)
    throw std::runtime_error("--host " + o_.host + ": cannot raise the listen backlog of the bound socket");
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return port_;
}

void Server::load() {
  for (const auto& path : o_.checkpoints)
    models_.push_back(load_served_model(path, torch::Device(o_.device), o_.precision));
  assign_ids(models_);
  if (!o_.data.empty()) {
    DatasetOptions d;
    d.image_size = models_.front()->size();
    d.channels = models_.front()->channels();
    auto ds = load_dataset(o_.data, d);
    data_ = std::make_unique<DataSource>();
    data_->spec = o_.data;
    data_->images = ds.images;
  }
  worker_ = std::thread([this] { worker_loop(); });
  ready_ = true;
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  store_->close();  // cancels the queued jobs and asks the running one to stop; wakes the event streams
  if (worker_.joinable()) worker_.join();
  http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
}

void Server::worker_loop() {
  while (auto job = store_->next()) {
    if (job->cancel_requested) {
      store_->set_cancelled(*job);
      continue;
    }
    ServedModel* model = nullptr;
    for (auto& m : models_)
      if (m->id == job->spec.model) model = m.get();
    store_->set_running(*job);
    JobHooks hooks;
    hooks.cancelled = [job] { return job->cancel_requested.load(); };
    hooks.progress = [this, job](int64_t step, int64_t steps, int64_t done, int64_t images) {
      store_->set_progress(*job, step, steps, done, images);
    };
    hooks.preview = [this, job](const std::string& png, int64_t step, int64_t steps) {
      store_->set_preview(*job, png, step, steps);
    };
    try {
      if (!model) throw std::runtime_error("model '" + job->spec.model + "' is not loaded");
      auto out = run_job(job->spec, *model, data_.get(), hooks);
      store_->set_completed(*job, std::move(out.result), out.images, out.nfe);
      o_.log("job " + job->id + " completed (" + job->spec.task + ", " + std::to_string(out.images) + " images)");
    } catch (const JobCancelled&) {
      store_->set_cancelled(*job);
      o_.log("job " + job->id + " cancelled while running");
    } catch (const std::exception& e) {
      std::string msg = e.what();
      const auto nl = msg.find('\n');
      if (nl != std::string::npos) msg = msg.substr(0, nl);
      store_->set_failed(*job, msg);
      o_.log("job " + job->id + " failed: " + msg);
    }
  }
}

void Server::routes() {
  auto& svr = *http_;
  const bool loopback = is_loopback(o_.host);

  svr.set_pre_routing_handler([this, loopback](const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    size_t header_bytes = req.method.size() + req.target.size() + req.version.size();
    for (const auto& [k, v] : req.headers) header_bytes += k.size() + v.size() + 4;
    if (header_bytes > o_.max_header_bytes) {
      error_reply(res, 431, "request headers too large (" + std::to_string(header_bytes) + " bytes; limit " +
                                std::to_string(o_.max_header_bytes) + ")");
      return R::Handled;
    }
    if (req.has_header("Transfer-Encoding")) {
      error_reply(res, 411, "chunked (Transfer-Encoding) request bodies are not accepted: send Content-Length");
      return R::Handled;
    }
    if (req.has_header("Content-Length")) {
      const auto& cl = req.get_header_value("Content-Length");
      const bool digits = !cl.empty() && cl.size() < 19 &&
                          std::all_of(cl.begin(), cl.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) {
        error_reply(res, 400, "Content-Length '" + cl.substr(0, 40) + "' is not a number");
        return R::Handled;
      }
      if (std::stoull(cl) > o_.max_body_mb * 1024 * 1024) {
        error_reply(res, 413, "request body of " + cl + " bytes is over the limit of " +
                                  std::to_string(o_.max_body_mb) + " MiB (--max-body-mb)");
        return R::Handled;
      }
    }
    if (loopback && req.has_header("Origin")) {
      const auto origin = lower(req.get_header_value("Origin"));
      const std::string port = std::to_string(port_);
      const bool ok = origin == "http://127.0.0.1:" + port || origin == "http://localhost:" + port ||
                      origin == "http://[::1]:" + port;
      if (!ok) {
        error_reply(res, 403, "foreign Origin '" + origin.substr(0, 80) + "' refused: this server listens on a loopback address");
        return R::Handled;
      }
    }
    if (!o_.api_key.empty() && req.path != "/health" && req.path != "/") {
      const auto auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (auth.rfind(prefix, 0) != 0 || !same_secret(auth.substr(prefix.size()), o_.api_key)) {
        res.set_header("WWW-Authenticate", "Bearer");
        error_reply(res, 401, "missing or wrong API key: send Authorization: Bearer KEY");
        return R::Handled;
      }
    }
    return R::Unhandled;
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg += std::string(": ") + e.what();
    } catch (...) {
    }
    error_reply(res, 500, msg);
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) error_reply(res, 404, "no such path: " + req.method + " " + req.path.substr(0, 100));
    else if (res.status == 413) error_reply(res, 413, "request body too large");
    else error_reply(res, res.status, "HTTP " + std::to_string(res.status));
  });

  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (stopping_) json_reply(res, 503, {{"status", "stopping"}});
    else if (!ready_) json_reply(res, 503, {{"status", "loading"}});
    else json_reply(res, 200, {{"status", "ok"}});
  });
  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                   "script-src 'self' 'unsafe-inline'; connect-src 'self'");
    res.set_content(web_page(), "text/html; charset=utf-8");
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    if (!ready_) return error_reply(res, 503, "the models are still loading");
    nlohmann::json a = nlohmann::json::array();
    for (auto& m : models_) a.push_back(m->describe());
    nlohmann::json d = nullptr;
    if (data_) d = {{"spec", data_->spec}, {"size", data_->images.size(0)}};
    json_reply(res, 200, {{"models", a},
                          {"samplers", sampler_names()},
                          {"tasks", {"sample", "inpaint", "upscale", "denoise", "edit", "interpolate"}},
                          {"data", d},
                          {"limits", {{"max_num", o_.limits.max_num}, {"max_steps", o_.limits.max_steps},
                                      {"max_frames", o_.limits.max_frames}, {"max_queue", o_.max_queue},
                                      {"max_body_mb", o_.max_body_mb}}}});
  });
  svr.Post("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    if (!ready_) return error_reply(res, 503, "the models are still loading");
    if (stopping_) return error_reply(res, 503, "the server is shutting down");
    if (!json_depth_ok(req.body, o_.max_json_depth))
      return error_reply(res, 400, "the body nests deeper than " + std::to_string(o_.max_json_depth) + " levels");
    auto body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return error_reply(res, 400, "the body is not valid JSON");
    std::vector<const ServedModel*> ms;
    for (auto& m : models_) ms.push_back(m.get());
    JobSpec spec;
    try {
      spec = parse_job_request(body, ms, data_.get(), o_.limits);
    } catch (const RequestError& e) {
      return error_reply(res, 400, e.what());
    } catch (const std::exception& e) {  // a decoder's or a library check's message
      return error_reply(res, 400, e.what());
    }
    try {
      auto job = store_->submit(std::move(spec));
      json_reply(res, 202, {{"id", job->id}, {"status", "queued"},
                            {"queue_position", store_->locked([&] { return store_->queue_position(*job); })}});
      res.set_header("Location", "/v1/jobs/" + job->id);
    } catch (const QueueFull& e) {
      res.set_header("Retry-After", "2");
      error_reply(res, 429, e.what());
    }
  });
  svr.Get("/v1/jobs", [this](const httplib::Request&, httplib::Response& res) { json_reply(res, 200, store_->list()); });
  svr.Get(R"(/v1/jobs/([A-Za-z0-9]{1,32}))", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = store_->get(req.matches[1]);
    if (!job) return error_reply(res, 404, "no job '" + std::string(req.matches[1]) + "'");
    json_reply(res, 200, store_->to_json(*job));
  });
  svr.Post(R"(/v1/jobs/([A-Za-z0-9]{1,32})/cancel)", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!store_->cancel(id)) return error_reply(res, 404, "no job '" + id + "'");
    json_reply(res, 200, store_->to_json(*store_->get(id), /*with_result=*/false));
  });
  svr.Get(R"(/v1/jobs/([A-Za-z0-9]{1,32})/events)", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = store_->get(req.matches[1]);
    if (!job) return error_reply(res, 404, "no job '" + std::string(req.matches[1]) + "'");
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    struct Seen {
      uint64_t version = ~0ull, progress = 0, preview = 0, status = ~0ull;
      bool done = false;
    };
    auto seen = std::make_shared<Seen>();
    const auto heartbeat = std::chrono::milliseconds(o_.heartbeat_ms);
    res.set_chunked_content_provider("text/event-stream", [this, job, seen, heartbeat](size_t, httplib::DataSink& sink) {
      if (seen->done) {
        sink.done();
        return true;
      }
      const uint64_t v = store_->wait_change(*job, seen->version, heartbeat);
      if (v == seen->version) {  // nothing new: a heartbeat, which also finds a client that went away
        if (stopping_) {
          sink.done();
          return true;
        }
        const std::string hb = ": heartbeat\n\n";
        return sink.write(hb.data(), hb.size());
      }
      seen->version = v;
      std::string out;
      bool fin = false;
      store_->locked([&] {
        if (job->status_version != seen->status) {
          seen->status = job->status_version;
          nlohmann::json s = {{"status", to_string(job->status)}};
          if (job->status == JobStatus::Queued) s["queue_position"] = store_->queue_position(*job);
          out += sse("status", s);
        } else if (job->status == JobStatus::Queued) {
          out += sse("status", {{"status", "queued"}, {"queue_position", store_->queue_position(*job)}});
        }
        if (job->progress_version != seen->progress) {
          seen->progress = job->progress_version;
          out += sse("progress", {{"step", job->step}, {"steps", job->steps}, {"images_done", job->images_done},
                                  {"images", job->images}});
        }
        if (job->preview_version != seen->preview) {
          seen->preview = job->preview_version;
          out += sse("preview", {{"step", job->preview_step}, {"steps", job->preview_steps}, {"image", job->preview_png}});
        }
        fin = finished(job->status);
        return 0;
      });
      if (fin) out += sse("result", store_->to_json(*job));
      if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // the client went away
      if (fin) {
        seen->done = true;
        sink.done();
      }
      return true;
    });
  });
  svr.Get(R"(/v1/data/(\d{1,9}))", [this](const httplib::Request& req, httplib::Response& res) {
    if (!data_) return error_reply(res, 404, "the server has no --data");
    const int64_t i = std::stoll(req.matches[1]);
    if (i >= data_->images.size(0))
      return error_reply(res, 404, "image " + std::to_string(i) + " is out of range (--data '" + data_->spec + "' has " +
                                       std::to_string(data_->images.size(0)) + " images)");
    res.set_content(encode_png(data_->images[i].contiguous()), "image/png");
  });
  if (o_.metrics) {
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      const auto c = store_->counters();
      std::ostringstream m;
      m << "# HELP ddpm_jobs_total Jobs by final status (and submitted).\n# TYPE ddpm_jobs_total counter\n";
      for (const char* s : {"submitted", "completed", "failed", "cancelled"}) {
        auto it = c.by_status.find(s);
        m << "ddpm_jobs_total{status=\"" << s << "\"} " << (it == c.by_status.end() ? 0 : it->second) << "\n";
      }
      m << "# HELP ddpm_queue_length Jobs waiting.\n# TYPE ddpm_queue_length gauge\nddpm_queue_length "
        << store_->queue_length() << "\n";
      m << "# HELP ddpm_images_total Images made by completed jobs.\n# TYPE ddpm_images_total counter\n"
        << "ddpm_images_total " << c.images << "\n";
      m << "# HELP ddpm_nfe_total Network evaluations (per image) of completed jobs.\n# TYPE ddpm_nfe_total counter\n"
        << "ddpm_nfe_total " << c.nfe << "\n";
      m << "# HELP ddpm_job_seconds Running time of finished jobs.\n# TYPE ddpm_job_seconds summary\n"
        << "ddpm_job_seconds_sum " << c.seconds << "\nddpm_job_seconds_count " << c.timed << "\n";
      res.set_content(m.str(), "text/plain; version=0.0.4");
    });
  }
}

}  // namespace ddpm::serve
