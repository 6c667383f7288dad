#!/usr/bin/python3
"""serve_bench.py — figures of `ddpm serve` (docs/serve.md), printed as one JSON object.

  /usr/bin/python3 bench/serve_bench.py [--ddpm build/ddpm] [--checkpoint models/fmnist-small.safetensors]
                                        [--repeats 5] [--threads 2]

Measures, alternating the two sides so that drift hits both alike:
  - job latency through the server (POST, then the job's event stream read up to its `result` event, as the web
    page does) vs the same work from the CLI (`ddpm sample` with the same parameters: its own "seconds", the
    sampling alone, and its whole process) for 16 images x 20 NFE (dpm++2m), and the overhead;
  - the same job waited for by polling GET /v1/jobs/{id} every 5 ms instead: on a 2-core machine the polling
    client competes with the model's two threads, and this shows what that costs;
  - the cost of the previews (the same job with preview_every 0 vs the default, about 20 per job);
  - requests/s of GET /health (one keep-alive client, sequential);
  - p50/p99 job latency with 64 clients submitting at once (1 image, dpm++2m 20 steps each) and polling.
Standard library only (urllib, http.client, threads). Not a test: it asserts nothing.
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap.add_argument("--ddpm", default=os.path.join(root, "build", "ddpm"))
ap.add_argument("--checkpoint", default=os.path.join(root, "models", "fmnist-small.safetensors"))
ap.add_argument("--repeats", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--clients", type=int, default=64)
args = ap.parse_args()

JOB = {"num": 16, "seed": 0, "sampler": "dpm++2m", "steps": 20}


def start_server():
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    p = subprocess.Popen([args.ddpm, "serve", "--checkpoint", args.checkpoint, "--port", "0", "--threads",
                          str(args.threads), "--max-queue", "256", "--http-threads", "32"],
                         stderr=log, stdout=subprocess.DEVNULL)
    for _ in range(1200):
        time.sleep(0.05)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log.name).read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            sys.exit("ddpm serve exited: " + open(log.name).read())
    sys.exit("ddpm serve did not start")


class Api:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        self.c.request(method, path, body=None if body is None else json.dumps(body),
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and r.getheader("Content-Type", "").startswith("application/json") else data)

    def run_events(self, job):
        """POST the job, then read its event stream until the `result` event: no polling."""
        t0 = time.perf_counter()
        st, j = self.call("POST", "/v1/jobs", job)
        assert st == 202, (st, j)
        self.c.request("GET", "/v1/jobs/" + j["id"] + "/events")
        r = self.c.getresponse()
        assert r.status == 200, r.status
        event = None
        while True:
            line = r.fp.readline()
            if not line:
                raise RuntimeError("event stream ended without a result")
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "result":
                lat = time.perf_counter() - t0
                s = json.loads(line[5:])
                self.c.close()  # the stream ends after the result; the next call reconnects
                assert s["status"] == "completed", s
                return lat, s["result"]["seconds"]

    def run(self, job, poll=0.005):
        t0 = time.perf_counter()
        st, j = self.call("POST", "/v1/jobs", job)
        assert st == 202, (st, j)
        while True:
            st, s = self.call("GET", "/v1/jobs/" + j["id"])
            if s["status"] in ("completed", "failed", "cancelled"):
                assert s["status"] == "completed", s
                return time.perf_counter() - t0, s["result"]["seconds"]
            time.sleep(poll)


def cli_once():
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        out = subprocess.run([args.ddpm, "sample", "--checkpoint", args.checkpoint, "--num", str(JOB["num"]), "--seed",
                              "0", "--sampler", JOB["sampler"], "--steps", str(JOB["steps"]), "--threads",
                              str(args.threads), "--format", "npz", "--out", os.path.join(d, "x.npz")],
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


proc, port = start_server()
api = Api(port)
try:
    api.run_events(JOB)  # warm-up: first-call allocations
    cli_once()
    server_lat, server_secs, cli_secs, cli_wall, nopreview_lat, poll_lat = [], [], [], [], [], []
    for _ in range(args.repeats):
        lat, secs = api.run_events(JOB)
        server_lat.append(lat)
        server_secs.append(secs)
        wall, secs = cli_once()
        cli_wall.append(wall)
        cli_secs.append(secs)
        lat, _ = api.run_events(dict(JOB, preview_every=0))
        nopreview_lat.append(lat)
        lat, _ = api.run(JOB, poll=0.005)
        poll_lat.append(lat)
    med = statistics.median
    # /health
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        st, _ = api.call("GET", "/health")
        assert st == 200
    health_rps = n / (time.perf_counter() - t0)
    # many clients at once
    lat = [None] * args.clients
    barrier = threading.Barrier(args.clients)

    def client(i):
        a = Api(port)
        barrier.wait()
        try:
            lat[i], _ = a.run({"num": 1, "seed": i, "sampler": "dpm++2m", "steps": 20}, poll=0.02)
        except Exception as e:  # counted as failed, reported below
            print("client %d: %s" % (i, e), file=sys.stderr)

    ts = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    load_wall = time.perf_counter() - t0
    failed = sum(1 for x in lat if x is None)
    lat = sorted(x for x in lat if x is not None)
    q = lambda p: lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))]
    cpu = ""
    try:
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except Exception:
        pass
    print(json.dumps({
        "cpu": cpu, "threads": args.threads, "checkpoint": os.path.basename(args.checkpoint), "repeats": args.repeats,
        "job": JOB,
        "server_latency_s": round(med(server_lat), 4), "server_job_seconds": round(med(server_secs), 4),
        "cli_sampling_seconds": round(med(cli_secs), 4), "cli_process_seconds": round(med(cli_wall), 4),
        "overhead_vs_cli_sampling": round(med(server_lat) / med(cli_secs) - 1, 4),
        "latency_without_previews_s": round(med(nopreview_lat), 4),
        "latency_polling_5ms_s": round(med(poll_lat), 4),
        "polling_cost": round(med(poll_lat) / med(server_lat) - 1, 4),
        "preview_cost": round(med(server_lat) / med(nopreview_lat) - 1, 4),
        "health_requests_per_s": round(health_rps, 1),
        "load": {"clients": args.clients, "job": "1 image, dpm++2m 20 steps", "p50_s": round(q(0.5), 3),
                 "p99_s": round(q(0.99), 3), "wall_s": round(load_wall, 3),
                 "jobs_per_s": round(args.clients / load_wall, 2), "failed": failed},
    }))
finally:
    proc.terminate()
    proc.wait(timeout=10)
