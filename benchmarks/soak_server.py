"""Soak benchmark: mixed traffic from 8 clients at a real nst-server process on loopback.

    python benchmarks/soak_server.py [--minutes 10]

Each client loops over: a valid small job (must return a result), a job it cancels itself after
its first progress (must end cancelled), a burst of malformed messages (each must get an error),
a client process killed mid-job (the server must drop its job), and pings (latency measured).
Prints jobs completed and cancelled, errors by code, max ping latency, the server's RSS, open
files and threads at the start and the end, and its log size. Targets: every valid job completes
or is cancelled by its own client; RSS, files and threads flat (within 10 %); log growth bounded.
"""
import argparse
import collections
import io
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import zmq

from nst_contract.client import Client, JobCancelled, JobEventKind, NSTError, ServerError
from nst_server.service import daemon
from nst_server.engine.samples import painting, photo

CLIENTS = 8
JOB = {"preset": "fast", "size": 64, "iterations": 6}
LONG = {"preset": "fast", "size": 64, "iterations": 10000}
BAD = [
    [b"not json"],
    [b'{"v": 1, "type": "ping", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
    [b'{"v": true, "type": "ping"}'],
    [b'{"v": 1, "type": "submit", "width": 16, "height": 16, "channels": 3, '
     b'"settings": {"iterations": Infinity}}', b"\0" * 768, b"x"],
    [b'{"v": 1, "type": "cancel", "job": "job-1"}'],
    [b'{"v": 1, "type": "ping"}', b"extra"],
]
DOOMED = """
import sys
from nst_contract.client import Client
def on(event):
    print(event.kind.value, flush=True)
Client(sys.argv[1]).stylize(bytes(64 * 48 * 3), 64, 48, 3, open(sys.argv[2], "rb").read(),
                            %r, on_event=on)
""" % LONG


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.errors = collections.Counter()
        self.pings = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] += n


def client_loop(endpoint, layer, style_png, style_file, until, tally, seed):
    rng = random.Random(seed)
    client = Client(endpoint)
    context = zmq.Context.instance()
    while time.monotonic() < until:
        action = rng.choice(["job", "job", "cancel", "bad", "killed", "ping"])
        try:
            if action == "job":
                tally.add("jobs submitted")
                client.stylize(layer.tobytes(), layer.width, layer.height, 3, style_png, JOB)
                tally.add("jobs completed")
            elif action == "cancel":
                tally.add("cancels submitted")
                events = []
                try:
                    client.stylize(layer.tobytes(), layer.width, layer.height, 3, style_png, LONG,
                                   on_event=events.append, should_cancel=lambda: any(
                                       e.kind is JobEventKind.PROGRESS for e in events))
                except JobCancelled:
                    tally.add("cancelled by their client")
            elif action == "bad":
                with context.socket(zmq.DEALER) as sock:
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.connect(endpoint)
                    for parts in rng.sample(BAD, 3):
                        sock.send_multipart(parts)
                        if sock.poll(5000):
                            code = json.loads(sock.recv_multipart()[0]).get("code", "?")
                            with tally.lock:
                                tally.errors[code] += 1
            elif action == "killed":
                doomed = subprocess.Popen([sys.executable, "-c", DOOMED, endpoint, style_file],
                                          stdout=subprocess.PIPE, text=True)
                while doomed.stdout.readline().strip() not in ("progress", ""):
                    pass
                doomed.kill()
                doomed.wait()
                tally.add("clients killed mid-job")
            else:
                latency = client.ping()
                with tally.lock:
                    tally.pings.append(latency)
        except ServerError as exc:
            tally.add(f"refused: {exc.code}")
        except NSTError as exc:
            tally.add(f"failed: {type(exc).__name__}")


def snapshot(process):
    return {"RSS MiB": process.memory_info().rss / 2**20, "open files": process.num_fds(),
            "threads": process.num_threads()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nst-soak-"))
    endpoint, log = f"tcp://127.0.0.1:{free_port()}", work / "server.log"
    server = daemon.spawn(["--endpoint", endpoint, "--log-file", str(log), "--job-timeout", "3",
                           "--max-queue", "32"], subprocess.DEVNULL)
    daemon.wait_until_answering(server, endpoint)
    process = psutil.Process(server.pid)
    layer = photo("astronaut").resize((64, 48)).convert("RGB")
    style = io.BytesIO()
    painting("swirls", size=96).save(style, "PNG")
    style_file = work / "style.png"
    style_file.write_bytes(style.getvalue())
    Client(endpoint).stylize(layer.tobytes(), 64, 48, 3, style.getvalue(), JOB)  # warm up
    start, log_start = snapshot(process), log.stat().st_size
    tally, until = Tally(), time.monotonic() + args.minutes * 60
    threads = [threading.Thread(target=client_loop, args=(
        endpoint, layer, style.getvalue(), str(style_file), until, tally, seed))
        for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(4)  # let the last abandoned job be dropped
    end, info = snapshot(process), Client(endpoint).info()
    server.terminate()
    server.wait(30)
    report(args.minutes, tally, start, end, log, log_start, info)


def report(minutes, tally, start, end, log, log_start, info):
    print(f"{minutes:g} min of mixed traffic from {CLIENTS} clients:")
    for key, count in sorted(tally.counts.items()):
        print(f"  {key}: {count}")
    print("  errors by code (bad messages): " + ", ".join(
        f"{code} {n}" for code, n in sorted(tally.errors.items())))
    pings = sorted(tally.pings)
    print(f"  pings: {len(pings)}, median {pings[len(pings) // 2] * 1000:.1f} ms, "
          f"max {pings[-1] * 1000:.1f} ms")
    for key in start:
        change = (end[key] - start[key]) / start[key] * 100
        print(f"  server {key}: {start[key]:.0f} -> {end[key]:.0f} ({change:+.1f} %)")
    size = sum(p.stat().st_size for p in log.parent.glob(log.name + "*"))
    print(f"  log: {size - log_start} bytes written ({size} in all, rotated at 5 MiB)")
    print(f"  at the end: busy {info['busy']}, {info['queue_length']} waiting")
    lost = tally.counts["jobs submitted"] - tally.counts["jobs completed"]
    uncancelled = tally.counts["cancels submitted"] - tally.counts["cancelled by their client"]
    print(f"  valid jobs neither completed nor cancelled by their client: {lost + uncancelled}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
