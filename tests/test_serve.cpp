// test_serve.cpp — `ddpm serve` in-process on an ephemeral port with a tiny random-weight model, called through
// httplib::Client and raw sockets: every endpoint; images identical bit for bit to the CLI's (the job's own
// command line is run with the `ddpm` binary given as argv[1]); cancelling queued and running jobs; 429; the event
// stream (progress order, previews, its end on completion and when the client goes away); the API key; a foreign
// Origin; malformed requests (each a 4xx with a one-line JSON error, the server still serving); a bounded load
// test; SIGINT shutdown of the real binary. Not here: the web page (tests/test_serve_browser.sh).
#include "ddpm/data/image_set.h"
#include "ddpm/io/checkpoint.h"
#include "ddpm/io/image_io.h"
#include "ddpm/nn/unet.h"
#include "ddpm/serve/base64.h"
#include "ddpm/serve/server.h"
#include "ddpm/util/runtime.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;
using namespace ddpm;
using namespace ddpm::serve;
using json = nlohmann::json;

namespace {

std::string g_ddpm;  // the ddpm binary (argv[1])
fs::path g_dir;      // the test's scratch directory
std::string g_tiny;  // a tiny unconditional model
std::string g_cond;  // a tiny class-conditional model (3 classes)

std::string make_model(const std::string& name, int64_t classes) {
  torch::manual_seed(classes + 7);
  Config cfg;
  cfg.preset = "tiny";
  cfg.model = preset_model("tiny");
  cfg.model.num_classes = classes;
  UNet net(cfg.model);
  // A random output layer, so that the images depend on every input (the preset zero-initialises it).
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.02);
  }
  SafeTensors st;
  add_module_state(st, *net, "ema.");
  st.metadata = checkpoint_metadata(cfg, 7);
  const auto path = (g_dir / name).string();
  safetensors_save(path, st);
  return path;
}

ServerOptions options(const std::string& checkpoint = g_tiny) {
  ServerOptions o;
  o.checkpoints = {checkpoint};
  o.port = 0;
  o.max_queue = 16;
  o.http_threads = 8;
  o.metrics = true;
  o.heartbeat_ms = 200;
  o.read_timeout_s = 3;
  o.write_timeout_s = 3;
  o.max_body_mb = 2;
  return o;
}

struct Running {
  std::unique_ptr<Server> server;
  std::unique_ptr<httplib::Client> client;
  explicit Running(ServerOptions o) {
    server = std::make_unique<Server>(std::move(o));
    const int port = server->start();
    server->load();
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_read_timeout(30, 0);
  }
  int port() const { return server->port(); }
};

json body_of(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  if (!r) return json();
  auto j = json::parse(r->body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r->body.substr(0, 200);
  return j;
}

json submit(httplib::Client& c, const json& req, int expect = 202) {
  auto r = c.Post("/v1/jobs", req.dump(), "application/json");
  EXPECT_TRUE(r);
  if (!r) return json();
  EXPECT_EQ(r->status, expect) << r->body.substr(0, 300);
  return body_of(r);
}

json wait_done(httplib::Client& c, const std::string& id, double timeout_s = 120) {
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    auto j = body_of(c.Get(("/v1/jobs/" + id).c_str()));
    const auto s = j.value("status", "");
    if (s == "completed" || s == "failed" || s == "cancelled") return j;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      ADD_FAILURE() << "job " << id << " did not finish: " << j.dump().substr(0, 300);
      return j;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

json wait_status(httplib::Client& c, const std::string& id, const std::string& status, double timeout_s = 30) {
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    auto j = body_of(c.Get(("/v1/jobs/" + id).c_str()));
    if (j.value("status", "") == status) return j;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      ADD_FAILURE() << "job " << id << " never became " << status << ": " << j.dump().substr(0, 300);
      return j;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

torch::Tensor decode_b64(const std::string& b64) { return decode_image(base64_decode(b64), "test image"); }

std::string png_b64_of(const torch::Tensor& chw) { return base64_encode(encode_png(chw)); }

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
}

// Runs the job's command line (in `cwd`, where its input files were saved) and returns its images.
torch::Tensor run_cli(const std::string& command, const fs::path& cwd) {
  EXPECT_EQ(command.rfind("ddpm ", 0), 0u) << command;
  const auto out = cwd / "cli_out";
  fs::remove_all(out);
  const std::string cmd = "cd '" + cwd.string() + "' && '" + g_ddpm + "' " + command.substr(5) +
                          " --threads 2 --out-dir cli_out >cli.json 2>cli.err";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream e(cwd / "cli.err");
    ADD_FAILURE() << cmd << ": exit " << rc << ": " << std::string((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
    return torch::zeros({0, 1, 28, 28}, torch::kUInt8);
  }
  return load_image_set(out.string());  // [N,C,H,W]
}

void expect_same_images(const json& job, const torch::Tensor& cli) {
  const auto& images = job["result"]["images"];
  ASSERT_EQ(static_cast<int64_t>(images.size()), cli.size(0));
  for (size_t i = 0; i < images.size(); ++i)
    EXPECT_TRUE(torch::equal(decode_b64(images[i].get<std::string>()), cli[static_cast<int64_t>(i)]))
        << "image " << i << " differs from the CLI's";
}

// A raw HTTP exchange: sends `request` as is, reads until the server closes or 5 s pass. -> (status, body)
std::pair<int, std::string> raw(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {-1, "connect failed"};
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t sent = 0;
  while (sent < request.size()) {
    const auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before the whole body is sent
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[4096];
  while (true) {  // until the server closes, or one whole response (a kept-alive connection stays open)
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
    const auto end = resp.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    std::smatch m;
    const std::string head = resp.substr(0, end);
    if (std::regex_search(head, m, std::regex("Content-Length: (\\d+)", std::regex::icase)) &&
        resp.size() >= end + 4 + std::stoul(m[1]))
      break;
  }
  ::close(fd);
  int status = -1;
  if (resp.rfind("HTTP/1.1 ", 0) == 0) status = std::atoi(resp.c_str() + 9);
  const auto p = resp.find("\r\n\r\n");
  return {status, p == std::string::npos ? "" : resp.substr(p + 4)};
}

std::string post_raw(const std::string& body, const std::string& extra_headers = "") {
  return "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

long rss_kb() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

torch::Tensor test_image(int64_t seed) {
  auto g = make_generator(static_cast<uint64_t>(seed));
  return torch::randint(0, 256, {1, 28, 28}, g, torch::kLong).to(torch::kUInt8);
}

}  // namespace

// ---------------------------------------------------------------------------------------------- endpoints --
TEST(Serve, HealthModelsPageMetricsAndJobs) {
  Running s(options());
  auto& c = *s.client;
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(body_of(h)["status"], "ok");

  auto m = body_of(c.Get("/v1/models"));
  ASSERT_EQ(m["models"].size(), 1u);
  const auto& d = m["models"][0];
  EXPECT_EQ(d["id"], "tiny");
  EXPECT_EQ(d["image_size"], 28);
  EXPECT_EQ(d["channels"], 1);
  EXPECT_EQ(d["classes"], 0);
  EXPECT_EQ(d["prediction"], "eps");
  EXPECT_EQ(d["step"], 7);
  EXPECT_GT(d["parameters"].get<int64_t>(), 1000);
  EXPECT_TRUE(m["data"].is_null());
  EXPECT_NE(std::find(m["samplers"].begin(), m["samplers"].end(), "dpm++2m"), m["samplers"].end());

  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("<html"), std::string::npos);

  auto j = submit(c, {{"num", 3}, {"seed", 5}, {"sampler", "ddim"}, {"steps", 4}});
  EXPECT_EQ(j["status"], "queued");
  const std::string id = j["id"];
  auto done = wait_done(c, id);
  ASSERT_EQ(done["status"], "completed") << done.dump().substr(0, 400);
  EXPECT_EQ(done["result"]["images"].size(), 3u);
  EXPECT_EQ(done["result"]["nfe"], 4);
  EXPECT_EQ(done["progress"]["images_done"], 3);
  EXPECT_EQ(done["request"]["steps"], 4);
  EXPECT_EQ(done["result"]["command"].get<std::string>().rfind("ddpm sample --checkpoint " + g_tiny, 0), 0u);
  const auto grid = decode_b64(done["result"]["grid"]);
  EXPECT_EQ(grid.size(0), 1);

  auto list = body_of(c.Get("/v1/jobs"));
  ASSERT_GE(list["jobs"].size(), 1u);
  EXPECT_EQ(list["jobs"][0]["id"], id);
  auto nf = c.Get("/v1/jobs/j999");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_TRUE(body_of(nf).contains("error"));
  auto nopath = c.Get("/nope");
  ASSERT_TRUE(nopath);
  EXPECT_EQ(nopath->status, 404);
  EXPECT_TRUE(body_of(nopath).contains("error"));
  auto nodata = c.Get("/v1/data/0");
  ASSERT_TRUE(nodata);
  EXPECT_EQ(nodata->status, 404);

  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("ddpm_jobs_total{status=\"completed\"} 1"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("ddpm_images_total 3"), std::string::npos);
  EXPECT_NE(metrics->body.find("ddpm_nfe_total 12"), std::string::npos);
  EXPECT_NE(metrics->body.find("ddpm_queue_length 0"), std::string::npos);
}

// ------------------------------------------------------------------------------------------ CLI identity --
TEST(Serve, SampleImagesAreTheCliImagesBitForBit) {
  Running s(options());
  auto& c = *s.client;
  const auto dir = g_dir / "cli_sample";
  fs::create_directories(dir);
  for (const json& req : {json{{"num", 5}, {"seed", 11}, {"sampler", "dpm++2m"}, {"steps", 6}},
                          json{{"num", 3}, {"seed", 2}, {"sampler", "ddpm"}, {"steps", 5}, {"variance", "fixed_small"}},
                          json{{"num", 2}, {"seed", 9}, {"sampler", "heun"}, {"steps", 3}, {"rho", 5.0}}}) {
    auto done = wait_done(c, submit(c, req)["id"]);
    ASSERT_EQ(done["status"], "completed") << done.dump().substr(0, 300);
    expect_same_images(done, run_cli(done["result"]["command"], dir));
  }
}

TEST(Serve, ClassConditionalSampleMatchesTheCli) {
  Running s(options(g_cond));
  auto& c = *s.client;
  const auto dir = g_dir / "cli_cond";
  fs::create_directories(dir);
  auto done = wait_done(c, submit(c, {{"num", 3}, {"seed", 4}, {"sampler", "ddim"}, {"steps", 3}, {"class", 2},
                                      {"guidance", 1.5}})["id"]);
  ASSERT_EQ(done["status"], "completed") << done.dump().substr(0, 300);
  EXPECT_NE(done["result"]["command"].get<std::string>().find("--class 2 --guidance 1.5"), std::string::npos);
  expect_same_images(done, run_cli(done["result"]["command"], dir));
  auto bad = submit(c, {{"class", 3}}, 400);
  EXPECT_NE(bad["error"].get<std::string>().find("field 'class'"), std::string::npos) << bad.dump();
}

TEST(Serve, RestorationImagesAreTheCliImagesBitForBit) {
  Running s(options());
  auto& c = *s.client;
  const auto dir = g_dir / "cli_restore";
  fs::create_directories(dir);
  const auto a = test_image(1), b = test_image(2);
  write_bytes(dir / "input.png", encode_png(a));
  write_bytes(dir / "image_b.png", encode_png(b));
  auto mask = torch::zeros({1, 28, 28}, torch::kUInt8);
  mask.slice(1, 4, 20).slice(2, 8, 22).fill_(255);  // white = fill
  write_bytes(dir / "mask.png", encode_png(mask));
  const std::vector<json> reqs = {
      {{"task", "inpaint"}, {"image", png_b64_of(a)}, {"mask_shape", "center"}, {"method", "repaint"}, {"steps", 4},
       {"jump_length", 2}, {"resample", 2}, {"num", 2}, {"seed", 3}},
      {{"task", "inpaint"}, {"image", "data:image/png;base64," + png_b64_of(a)}, {"mask", png_b64_of(mask)},
       {"method", "ddnm"}, {"steps", 3}, {"seed", 8}},
      {{"task", "inpaint"}, {"image", png_b64_of(a)}, {"mask_shape", "random:0.4"}, {"method", "replace"}, {"steps", 3}},
      {{"task", "upscale"}, {"image", png_b64_of(a.slice(1, 0, 14).slice(2, 0, 14).contiguous())}, {"factor", 2},
       {"method", "ilvr"}, {"steps", 3}, {"num", 2}},
      {{"task", "denoise"}, {"image", png_b64_of(a)}, {"sigma", 0.2}, {"steps", 3}, {"seed", 1}},
      {{"task", "edit"}, {"image", png_b64_of(a)}, {"strength", 0.3}, {"steps", 3}, {"mask", png_b64_of(mask)}},
      {{"task", "interpolate"}, {"image", png_b64_of(a)}, {"image_b", png_b64_of(b)}, {"frames", 3}, {"steps", 3}},
  };
  for (const auto& req : reqs) {
    // The command line names the upload input.png: the file the CLI reads is the request's image.
    const auto input = req["task"] == "upscale" ? a.slice(1, 0, 14).slice(2, 0, 14).contiguous() : a;
    write_bytes(dir / "input.png", encode_png(input));
    auto done = wait_done(c, submit(c, req)["id"]);
    ASSERT_EQ(done["status"], "completed") << done.dump().substr(0, 300);
    const std::string cmd = done["result"]["command"];
    SCOPED_TRACE(cmd);
    expect_same_images(done, run_cli(cmd, dir));
    EXPECT_FALSE(done["result"]["inputs"].empty());
  }
}

TEST(Serve, DatasetImagesByIndexGivePsnrAndMatchTheCli) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist")) GTEST_SKIP() << "no Fashion-MNIST (dataset-fashion-mnist)";
  auto o = options();
  o.data = "fashion-mnist@test";
  Running s(o);
  auto& c = *s.client;
  auto m = body_of(c.Get("/v1/models"));
  EXPECT_EQ(m["data"]["size"], 10000);
  auto png = c.Get("/v1/data/3");
  ASSERT_TRUE(png);
  EXPECT_EQ(png->status, 200);
  EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
  auto out = c.Get("/v1/data/10000");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 404);
  const auto dir = g_dir / "cli_data";
  fs::create_directories(dir);
  for (const json& req : {json{{"task", "upscale"}, {"data_index", 3}, {"factor", 2}, {"steps", 3}},
                          json{{"task", "inpaint"}, {"data_index", 5}, {"mask_shape", "left"}, {"method", "ddnm"}, {"steps", 3}, {"num", 2}},
                          json{{"task", "denoise"}, {"data_index", 7}, {"add_noise", 0.1}, {"steps", 3}}}) {
    auto done = wait_done(c, submit(c, req)["id"]);
    ASSERT_EQ(done["status"], "completed") << done.dump().substr(0, 300);
    EXPECT_TRUE(done["result"]["metrics"].contains("psnr"));
    EXPECT_TRUE(done["result"]["metrics"].contains("psnr_baseline"));
    expect_same_images(done, run_cli(done["result"]["command"], dir));
  }
}

// ---------------------------------------------------------------------------------------- cancel, queue --
TEST(Serve, CancelQueuedAndRunningJobsAndQueueFull) {
  auto o = options();
  o.max_queue = 2;
  Running s(o);
  auto& c = *s.client;
  const json slow = {{"num", 64}, {"sampler", "ddpm"}, {"steps", 1000}};
  const std::string running = submit(c, slow)["id"];
  wait_status(c, running, "running");
  const std::string q1 = submit(c, slow)["id"];
  auto q2 = submit(c, slow);
  EXPECT_EQ(q2["queue_position"], 1);
  auto full = c.Post("/v1/jobs", slow.dump(), "application/json");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 429);
  EXPECT_NE(body_of(full)["error"].get<std::string>().find("queue is full"), std::string::npos);

  // A queued job is dropped at once; the one behind it moves up.
  auto cq = body_of(c.Post(("/v1/jobs/" + q1 + "/cancel").c_str(), "", "application/json"));
  EXPECT_EQ(cq["status"], "cancelled");
  EXPECT_EQ(body_of(c.Get(("/v1/jobs/" + q2["id"].get<std::string>()).c_str()))["queue_position"], 0);
  // A running job stops at its next model call.
  const auto t0 = std::chrono::steady_clock::now();
  c.Post(("/v1/jobs/" + running + "/cancel").c_str(), "", "application/json");
  auto r = wait_done(c, running, 10);
  EXPECT_EQ(r["status"], "cancelled");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
  EXPECT_LT(r["progress"]["step"].get<int64_t>(), 1000);
  // The next job starts; cancel it too.
  wait_status(c, q2["id"], "running");
  c.Post(("/v1/jobs/" + q2["id"].get<std::string>() + "/cancel").c_str(), "", "application/json");
  EXPECT_EQ(wait_done(c, q2["id"], 10)["status"], "cancelled");
  auto cancel_unknown = c.Post("/v1/jobs/j12345/cancel", "", "application/json");
  ASSERT_TRUE(cancel_unknown);
  EXPECT_EQ(cancel_unknown->status, 404);
}

// ------------------------------------------------------------------------------------------------- events --
namespace {
struct Event {
  std::string name;
  json data;
};
// Reads an event stream; `stop_after` events then the client hangs up (0: to the end). -> the events in order.
std::vector<Event> read_events(int port, const std::string& id, size_t stop_after = 0, int* heartbeats = nullptr) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  std::vector<Event> events;
  std::string buf;
  c.Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    buf.append(data, n);
    size_t p;
    while ((p = buf.find("\n\n")) != std::string::npos) {
      const std::string block = buf.substr(0, p);
      buf.erase(0, p + 2);
      if (block.rfind(": heartbeat", 0) == 0) {
        if (heartbeats) ++*heartbeats;
        continue;
      }
      Event e;
      std::istringstream in(block);
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("event: ", 0) == 0) e.name = line.substr(7);
        if (line.rfind("data: ", 0) == 0) e.data = json::parse(line.substr(6));
      }
      events.push_back(e);
      if (stop_after > 0 && events.size() >= stop_after) return false;  // the client goes away
    }
    return true;
  });
  return events;
}
}  // namespace

TEST(Serve, EventStreamHasProgressInOrderPreviewsAndTheResult) {
  Running s(options());
  auto& c = *s.client;
  const std::string id = submit(c, {{"num", 4}, {"sampler", "ddim"}, {"steps", 30}, {"preview_every", 3}})["id"];
  auto events = read_events(s.port(), id);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front().name, "status");
  EXPECT_EQ(events.back().name, "result");
  EXPECT_EQ(events.back().data["status"], "completed");
  int64_t last = 0, previews = 0;
  std::set<std::string> distinct;
  for (const auto& e : events) {
    if (e.name == "progress") {
      EXPECT_GE(e.data["step"].get<int64_t>(), last);
      last = e.data["step"];
      EXPECT_EQ(e.data["steps"], 30);
    }
    if (e.name == "preview") {
      ++previews;
      const auto img = decode_b64(e.data["image"]);
      EXPECT_EQ(img.size(0), 1);
      EXPECT_GT(img.size(1), 28);  // a 2×2 grid of the 4 images
      distinct.insert(e.data["image"].get<std::string>());
    }
  }
  EXPECT_GE(previews, 2);
  EXPECT_GE(distinct.size(), 2u) << "the preview should change as x̂_0 sharpens";
  // A finished job's stream gives the result at once.
  auto again = read_events(s.port(), id);
  ASSERT_GE(again.size(), 2u);
  EXPECT_EQ(again.back().name, "result");
}

TEST(Serve, EventStreamsEndWhenTheClientGoesAwayAndSendHeartbeats) {
  auto o = options();
  o.http_threads = 3;
  Running s(o);
  auto& c = *s.client;
  const std::string slow = submit(c, {{"num", 64}, {"sampler", "ddpm"}, {"steps", 1000}})["id"];
  const std::string queued = submit(c, {{"num", 1}, {"steps", 2}})["id"];
  // The queued job's stream only has heartbeats and status; hang up after its first event, many times over: with
  // 3 pool threads, a stream that held its thread after the client left would soon block the server.
  for (int i = 0; i < 8; ++i) {
    int heartbeats = 0;
    auto ev = read_events(s.port(), i == 0 ? queued : slow, 1, &heartbeats);
    ASSERT_EQ(ev.size(), 1u);
  }
  int hb = 0;
  {
    httplib::Client h("127.0.0.1", s.port());
    h.set_read_timeout(3, 0);
    std::string got;
    h.Get(("/v1/jobs/" + queued + "/events").c_str(), [&](const char* d, size_t n) {
      got.append(d, n);
      if (got.find(": heartbeat") != std::string::npos) {
        ++hb;
        return false;
      }
      return true;
    });
  }
  EXPECT_EQ(hb, 1) << "an idle stream sends heartbeats";
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // a heartbeat finds each departed client
  httplib::Client h2("127.0.0.1", s.port());
  h2.set_read_timeout(2, 0);
  for (int i = 0; i < 5; ++i) {
    auto r = h2.Get("/health");
    ASSERT_TRUE(r) << "the server stopped answering: a departed stream holds a thread";
    EXPECT_EQ(r->status, 200);
  }
  c.Post(("/v1/jobs/" + slow + "/cancel").c_str(), "", "application/json");
  wait_done(c, queued, 30);
}

// -------------------------------------------------------------------------------------- key and origin --
TEST(Serve, ApiKeyGuardsEverythingButHealthAndThePage) {
  auto o = options();
  o.api_key = "s3cret-key";
  Running s(o);
  auto& c = *s.client;
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/")->status, 200);
  auto no = c.Get("/v1/models");
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 401);
  EXPECT_NE(body_of(no)["error"].get<std::string>().find("API key"), std::string::npos);
  EXPECT_EQ(c.Get("/v1/models", {{"Authorization", "Bearer wrong-key!"}})->status, 401);
  EXPECT_EQ(c.Get("/v1/models", {{"Authorization", "Bearer s3cret-ke"}})->status, 401);
  EXPECT_EQ(c.Post("/v1/jobs", json{{"num", 1}, {"steps", 1}}.dump(), "application/json")->status, 401);
  EXPECT_EQ(c.Get("/metrics")->status, 401);
  httplib::Headers ok = {{"Authorization", "Bearer s3cret-key"}};
  EXPECT_EQ(c.Get("/v1/models", ok)->status, 200);
  auto r = c.Post("/v1/jobs", ok, json{{"num", 1}, {"steps", 1}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
}

TEST(Serve, ForeignOriginIsRefusedOnALoopbackServer) {
  Running s(options());
  auto& c = *s.client;
  auto evil = c.Post("/v1/jobs", {{"Origin", "http://evil.example"}}, json{{"num", 1}}.dump(), "application/json");
  ASSERT_TRUE(evil);
  EXPECT_EQ(evil->status, 403);
  EXPECT_NE(body_of(evil)["error"].get<std::string>().find("Origin"), std::string::npos);
  EXPECT_EQ(c.Get("/v1/models", {{"Origin", "http://localhost:1"}})->status, 403);
  const std::string own = "http://127.0.0.1:" + std::to_string(s.port());
  EXPECT_EQ(c.Get("/v1/models", {{"Origin", own}})->status, 200);
  EXPECT_EQ(c.Get("/v1/models", {{"Origin", "http://localhost:" + std::to_string(s.port())}})->status, 200);
  EXPECT_EQ(c.Get("/v1/models")->status, 200);  // no Origin: not a browser's cross-site request
}

// ------------------------------------------------------------------------------------------- malformed --
TEST(Serve, MalformedRequestsGetOneLineJsonErrorsAndTheServerKeepsServing) {
  Running s(options());
  const int port = s.port();
  const auto img = png_b64_of(test_image(3));
  const auto png = encode_png(test_image(3));
  const auto big = encode_png(torch::zeros({1, 32, 32}, torch::kUInt8));
  struct Case {
    std::string name, request;
    int status;
    std::string needle;
  };
  std::string deep(100000, '[');
  const std::vector<Case> cases = {
      {"bad JSON", post_raw("{\"num\": 2,"), 400, "not valid JSON"},
      {"not an object", post_raw("[1,2]"), 400, "JSON object"},
      {"wrong type", post_raw(R"({"num": "four"})"), 400, "field 'num'"},
      {"negative seed", post_raw(R"({"seed": -1})"), 400, "field 'seed'"},
      {"float steps", post_raw(R"({"steps": 2.5})"), 400, "field 'steps'"},
      {"num too large", post_raw(R"({"num": 100000})"), 400, "field 'num'"},
      {"steps beyond T", post_raw(R"({"steps": 5000})"), 400, "field 'steps'"},
      {"unknown field", post_raw(R"({"nmu": 2})"), 400, "unknown field 'nmu'"},
      {"field of another task", post_raw(R"({"factor": 2})"), 400, "does not apply to task 'sample'"},
      {"unknown task", post_raw(R"({"task": "paint"})"), 400, "field 'task'"},
      {"unknown sampler", post_raw(R"({"sampler": "magic"})"), 400, "field 'sampler'"},
      {"unknown model", post_raw(R"({"model": "nope"})"), 400, "field 'model'"},
      {"deep nesting", post_raw("{\"a\":" + deep), 400, "nests deeper"},
      {"oversized body", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 999999999\r\n\r\n{}", 413, "over the limit"},
      {"chunked body", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "chunked"},
      {"bad Content-Length", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 12abc\r\n\r\n{}", 400, ""},
      {"huge headers", "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + [] {
         std::string h;
         for (int i = 0; i < 40; ++i) h += "X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'a') + "\r\n";
         return h;
       }() + "\r\n", 431, "headers too large"},
      {"bad base64", post_raw(R"({"task":"denoise","sigma":0.1,"image":"@@@@"})"), 400, "field 'image'"},
      {"truncated PNG", post_raw(json{{"task", "denoise"}, {"sigma", 0.1}, {"image", base64_encode(png.substr(0, png.size() / 2))}}.dump()), 400, "field 'image'"},
      {"not an image", post_raw(json{{"task", "denoise"}, {"sigma", 0.1}, {"image", base64_encode("hello world, not a png")}}.dump()), 400, "field 'image'"},
      {"wrong image size", post_raw(json{{"task", "denoise"}, {"sigma", 0.1}, {"image", base64_encode(big)}}.dump()), 400, "32x32"},
      {"missing image", post_raw(R"({"task":"edit","strength":0.5})"), 400, "field 'image'"},
      {"missing mask", post_raw(json{{"task", "inpaint"}, {"image", img}}.dump()), 400, "field 'mask'"},
      {"bad mask shape", post_raw(json{{"task", "inpaint"}, {"image", img}, {"mask_shape", "star"}}.dump()), 400, "field 'mask_shape'"},
      {"strength out of range", post_raw(json{{"task", "edit"}, {"image", img}, {"strength", 1.5}}.dump()), 400, "field 'strength'"},
      {"factor not dividing", post_raw(json{{"task", "upscale"}, {"image", img}, {"factor", 3}}.dump()), 400, "field 'factor'"},
      {"data_index without data", post_raw(R"({"task":"upscale","factor":2,"data_index":0})"), 400, "no --data"},
      {"interpolate num", post_raw(json{{"task", "interpolate"}, {"image", img}, {"image_b", img}, {"num", 2}}.dump()), 400, "field 'num'"},
      {"guidance on unconditional", post_raw(R"({"guidance": 1})"), 400, "field 'guidance'"},
      {"eta for ddpm", post_raw(R"({"sampler":"ddpm","eta":0.5})"), 400, "field 'eta'"},
      {"cancel of an unknown job", "POST /v1/jobs/j424242/cancel HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 404, ""},
      {"bad request line", "GARBAGE\r\n\r\n", 400, ""},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    auto [status, body] = raw(port, k.request);
    EXPECT_EQ(status, k.status) << body.substr(0, 300);
    if (!k.needle.empty()) {
      auto j = json::parse(body, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << body.substr(0, 300);
      ASSERT_TRUE(j.contains("error"));
      const std::string e = j["error"];
      EXPECT_NE(e.find(k.needle), std::string::npos) << e;
      EXPECT_EQ(e.find('\n'), std::string::npos);
    }
    auto h = raw(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(h.first, 200) << "the server stopped serving after: " << k.name;
  }
}

// ------------------------------------------------------------------------------------------------ load --
// httplib 0.11 listens with a backlog of 5 (compiled into Debian's library); a burst of connects while the accept
// thread waits for a core overflowed it and CI lost 3 of the 64 clients below ("no response: Read"). The server
// raises it; `ss` (iproute2, installed by scripts/setup.sh) shows a listening socket's backlog as its Send-Q.
TEST(Serve, ListenBacklogHoldsABurstOfConnects) {
  Running s(options());
  const std::string cmd = "ss -ltnH 'sport = :" + std::to_string(s.port()) + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ASSERT_EQ(pclose(p), 0) << cmd << ": " << out << " (ss comes with iproute2)";
  std::istringstream line(out);
  std::string state;
  long recv_q = -1, send_q = -1;
  line >> state >> recv_q >> send_q;
  ASSERT_EQ(state, "LISTEN") << out;
  EXPECT_GE(send_q, 64) << "listen backlog of port " << s.port() << ": " << out;
}

TEST(Serve, SixtyFourClientsAtOnceAndTwoThousandMalformedRequests) {
  auto o = options();
  o.max_queue = 128;
  o.http_threads = 16;
  Running s(o);
  const int port = s.port();
  std::vector<std::string> ids(64);
  std::vector<std::string> statuses(64);
  std::vector<double> latency(64);
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(60, 0);
      const auto t0 = std::chrono::steady_clock::now();
      auto r = c.Post("/v1/jobs", json{{"num", 1}, {"seed", i}, {"sampler", "ddim"}, {"steps", 2}}.dump(), "application/json");
      if (!r || r->status != 202) {
        statuses[i] = r ? "HTTP " + std::to_string(r->status) + ": " + r->body : "no response: " + httplib::to_string(r.error());
        return;
      }
      ids[i] = json::parse(r->body)["id"];
      for (int k = 0; k < 3000; ++k) {
        auto g = c.Get(("/v1/jobs/" + ids[i]).c_str());
        if (g && g->status == 200) {
          auto j = json::parse(g->body);
          if (j["status"] != "queued" && j["status"] != "running") {
            statuses[i] = j["status"];
            break;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      latency[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  }
  for (auto& t : clients) t.join();
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), 64u) << "a job was lost or duplicated";
  for (int i = 0; i < 64; ++i) EXPECT_EQ(statuses[i], "completed") << "client " << i;
  std::sort(latency.begin(), latency.end());
  std::printf("[ load ] 64 clients: job latency p50 %.3f s, p99 %.3f s\n", latency[31], latency[63]);

  // /health throughput (one keep-alive client).
  {
    httplib::Client c("127.0.0.1", port);
    const auto t0 = std::chrono::steady_clock::now();
    int n = 0;
    for (; n < 500; ++n) ASSERT_EQ(c.Get("/health")->status, 200);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ load ] /health: %.0f requests/s (500 sequential, keep-alive)\n", n / secs);
  }
  // 2,000 malformed requests: no crash, resident memory steady.
  const std::vector<std::string> bad = {post_raw("{\"num\": 2,"), post_raw(R"({"nmu": 1})"),
                                        post_raw(R"({"task":"denoise","sigma":0.1,"image":"@@"})"),
                                        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                        "GARBAGE\r\n\r\n"};
  for (int i = 0; i < 200; ++i) raw(port, bad[i % bad.size()]);  // warm-up: allocator pools settle
  const long before = rss_kb();
  int answered = 0;
  for (int i = 0; i < 2000; ++i) answered += raw(port, bad[i % bad.size()]).first >= 400 ? 1 : 0;
  const long after = rss_kb();
  std::printf("[ load ] 2000 malformed requests: %d answered 4xx, RSS %ld -> %ld kB\n", answered, before, after);
  EXPECT_EQ(answered, 2000);
  EXPECT_LT(after - before, 16 * 1024) << "resident memory grew by " << (after - before) << " kB";
  EXPECT_EQ(raw(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").first, 200);
}

// -------------------------------------------------------------------------------------------- shutdown --
TEST(Serve, SigintStopsTheBinaryWithExitZeroWhileAJobRuns) {
  const auto log = g_dir / "serve.log";
  pid_t pid = 0;
  std::vector<std::string> args = {g_ddpm, "serve", "--checkpoint", g_tiny, "--port", "0", "--threads", "2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_EQ(posix_spawn(&pid, g_ddpm.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream f(log);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::smatch m;
    if (std::regex_search(text, m, std::regex("listening on http://127\\.0\\.0\\.1:(\\d+)"))) port = std::stoi(m[1]);
  }
  ASSERT_GT(port, 0) << "no listening line";
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  const std::string id = submit(c, {{"num", 64}, {"sampler", "ddpm"}, {"steps", 1000}})["id"];
  wait_status(c, id, "running");
  const auto t0 = std::chrono::steady_clock::now();
  kill(pid, SIGINT);
  int status = 0;
  pid_t w = 0;
  for (int i = 0; i < 100 && w == 0; ++i) {
    w = waitpid(pid, &status, WNOHANG);
    if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (w == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "ddpm serve did not stop within 5 s of SIGINT";
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(secs, 5.0);
  std::ifstream f(log);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("SIGINT: stopping"), std::string::npos) << text;
  EXPECT_NE(text.find("stopped"), std::string::npos);
}

TEST(Serve, Base64RoundTripsAndRejectsGarbage) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)})
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_decode("TWE="), "Ma");
  EXPECT_EQ(base64_decode("TWE"), "Ma");
  EXPECT_THROW(base64_decode("TW@u"), std::invalid_argument);
  EXPECT_THROW(base64_decode("T"), std::invalid_argument);
  EXPECT_THROW(base64_decode("TWF=u"), std::invalid_argument);
  EXPECT_EQ(strip_data_url("data:image/png;base64,QUJD"), "QUJD");
  EXPECT_THROW(strip_data_url("data:text/html;base64,QUJD"), std::invalid_argument);
  EXPECT_FALSE(json_depth_ok(std::string(40, '[') + std::string(40, ']'), 32));
  EXPECT_TRUE(json_depth_ok("{\"a\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", 32));
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: test_serve PATH/TO/ddpm [gtest flags]\n");
    return 2;
  }
  g_ddpm = fs::absolute(argv[1]).string();
  set_threads(2);
  g_dir = fs::temp_directory_path() / ("ddpm_test_serve_" + std::to_string(getpid()));
  fs::create_directories(g_dir);
  g_tiny = make_model("tiny.safetensors", 0);
  g_cond = make_model("cond.safetensors", 3);
  const int rc = RUN_ALL_TESTS();
  fs::remove_all(g_dir);
  return rc;
}
