"""Protocol benchmark against a real nst-server process on loopback.

    python benchmarks/bench_protocol.py

Prints: the protocol's overhead for a 4000x3000 RGBA layer (client round trip minus the
server's own job time, i.e. framing, transfer both ways and queueing; target < 0.5 s), ping
latency while a job runs (target < 100 ms), and what the live preview costs: the same job with
previews every 1.5 s (as the plug-in asks) against none, run alternately (target <= 10 %
slower), and the bytes of one preview.
"""
import io
import socket
import statistics
import subprocess
import threading
import time

from nst_contract.client import Client, JobEventKind
from nst_server.service import daemon
from nst_server.engine.samples import painting, photo

def start_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    process = daemon.spawn(["--endpoint", endpoint], subprocess.DEVNULL)
    daemon.wait_until_answering(process, endpoint)
    return process, endpoint

def overhead(client, style_png, runs=3):
    layer = photo("astronaut").resize((4000, 3000)).convert("RGBA")
    pixels = layer.tobytes()
    trivial = {"preset": "fast", "size": 64, "iterations": 1}
    figures = []
    for _ in range(runs):
        events = []
        start = time.perf_counter()
        client.stylize(pixels, 4000, 3000, 4, style_png, trivial, on_event=events.append)
        wall = time.perf_counter() - start
        job_time = events[-1].elapsed  # the `result` header: the server's own time for the job
        figures.append((wall, wall - job_time))
    wall, cost = min(figures, key=lambda f: f[1])
    print(f"4000x3000 RGBA ({len(pixels) / 2**20:.0f} MiB each way), trivial job: round trip "
          f"{wall:.2f} s, of which protocol overhead {cost:.3f} s (target < 0.5 s; best of {runs})")

def ping_while_busy(client, style_png):
    events = []
    job = threading.Thread(target=client.stylize, args=(
        photo("coffee").convert("RGB").tobytes(), 600, 400, 3, style_png,
        {"preset": "balanced", "size": 384}), kwargs={"on_event": events.append})
    job.start()
    while not any(e.kind is JobEventKind.PROGRESS for e in events):
        time.sleep(0.01)
    latencies = []
    while job.is_alive() and len(latencies) < 200:
        latencies.append(client.ping() * 1000)
        time.sleep(0.02)
    job.join()
    print(f"ping while a job runs: median {statistics.median(latencies):.1f} ms, "
          f"max {max(latencies):.1f} ms over {len(latencies)} pings (target < 100 ms)")

def preview_cost(client, style_png, rounds=2):
    layer = photo("coffee").convert("RGB").resize((1600, 1200))
    settings = {"preset": "balanced", "size": 384}
    times = {0: [], 1.5: []}
    sizes = []
    for _ in range(rounds):
        for seconds in times:
            events = []
            client.stylize(layer.tobytes(), 1600, 1200, 3, style_png, settings,
                           on_event=events.append, preview_seconds=seconds, preview_side=1024)
            times[seconds].append(events[-1].elapsed)
            sizes += [len(e.pixels) for e in events if e.kind is JobEventKind.PREVIEW]
    off, on = min(times[0]), min(times[1.5])
    print(f"live preview (every 1.5 s, 1600x1200 layer, balanced at 384 px): job {on:.1f} s with, "
          f"{off:.1f} s without: {100 * (on / off - 1):+.1f} % (target <= 10 %; best of {rounds}); "
          f"{len(sizes) // rounds} previews per job, {statistics.median(sizes) / 1024:.0f} KiB each")

def main():
    process, endpoint = start_server()
    try:
        client = Client(endpoint, timeout=30)
        style = io.BytesIO()
        painting("swirls").save(style, "PNG")
        print(f"idle ping: {min(client.ping() for _ in range(20)) * 1000:.2f} ms")
        overhead(client, style.getvalue())
        ping_while_busy(client, style.getvalue())
        preview_cost(client, style.getvalue())
    finally:
        process.terminate()
        process.wait()

if __name__ == "__main__":
    main()
