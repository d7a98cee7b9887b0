"""What the plug-in's progress window sees during a default run: how often a preview comes, and
how far the time-left estimate is from the time the run then really took, on an idle machine and
on one that gets busy half-way (other programs taking every core).

    python benchmarks/bench_estimate.py [--photo PHOTO] [--painting PAINTING] [--size 1024]

A real nst-server process on loopback, the job submitted as the plug-in does (previews every
1.5 s, the default settings). Prints, per run: previews per quarter of the run (count and
longest gap) and, at 10/25/50/75/90 % of the run's time, the estimate against the truth.
"""
import argparse
import io
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from nst_contract.client import Client, JobEventKind
from nst_server.service import daemon
from nst_server.engine.samples import painting, photo

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import SHARED_STYLES  # noqa: E402

PREVIEW_SECONDS = 1.5  # the plug-in's (gimp_plugin/neural_style/neural_style.py)
MARKS = (0.10, 0.25, 0.50, 0.75, 0.90)


def start_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    process = daemon.spawn(["--endpoint", endpoint], subprocess.DEVNULL)
    daemon.wait_until_answering(process, endpoint, timeout=120)
    return process, endpoint


def spin(until):
    while time.monotonic() < until:
        pass


def busy_from(start_at, seconds):
    """One spinning process per core from `start_at` (monotonic) on, for `seconds`."""
    def later():
        time.sleep(max(0.0, start_at - time.monotonic()))
        spin(time.monotonic() + seconds)
    workers = [multiprocessing.Process(target=later, daemon=True) for _ in range(os.cpu_count() or 1)]
    for worker in workers:
        worker.start()
    return workers


def run(client, layer, style_png, busy_after=None):
    events, started = [], time.monotonic()
    workers = busy_from(started + busy_after, 3600) if busy_after is not None else []
    try:
        client.stylize(layer.tobytes(), layer.width, layer.height, 3, [style_png], {},
                       preview_seconds=PREVIEW_SECONDS, preview_side=512,
                       on_event=lambda e: events.append((time.monotonic() - started, e)))
    finally:
        for worker in workers:
            worker.terminate()
    return events, time.monotonic() - started


def report(name, events, total):
    previews = [t for t, e in events if e.kind is JobEventKind.PREVIEW]
    quarters = []
    for q in range(4):
        low, high = q * total / 4, (q + 1) * total / 4
        inside = [t for t in previews if low <= t < high]
        edges = [low, *inside, high]
        quarters.append(f"{len(inside)} (gap {max(b - a for a, b in zip(edges, edges[1:])):.1f} s)")
    print(f"{name}: {total:.0f} s, previews per quarter: {', '.join(quarters)}")
    progress = [(t, e.remaining) for t, e in events if e.kind is JobEventKind.PROGRESS]
    cells = []
    for mark in MARKS:
        at = mark * total
        seen = [(t, r) for t, r in progress if t <= at and r is not None]
        if not seen:
            cells.append(f"{mark:.0%}: none yet")
            continue
        t, estimate = seen[-1]
        cells.append(f"{mark:.0%}: said {estimate:.0f} s, was {total - t:.0f} s")
    first = next(((t, r) for t, r in progress if r is not None), None)
    print("  first estimate " + (f"at {first[0]:.1f} s: {first[1]:.0f} s left (was "
                                 f"{total - first[0]:.0f} s)" if first else "never"))
    print("  " + "; ".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", help="default: scikit-image's astronaut")
    parser.add_argument("--painting", default=str(SHARED_STYLES / "wave.jpg"))
    parser.add_argument("--size", type=int, default=1024, help="the photo's longest side")
    args = parser.parse_args()
    layer = (Image.open(args.photo) if args.photo else photo("astronaut")).convert("RGB")
    layer.thumbnail((args.size, args.size))
    source = Path(args.painting)
    style = Image.open(source) if source.exists() else painting("swirls", 512)
    buffer = io.BytesIO()
    style.convert("RGB").save(buffer, "PNG")
    process, endpoint = start_server()
    try:
        client = Client(endpoint, timeout=30)
        print(f"{layer.width}x{layer.height}, {source.name if source.exists() else 'swirls'}, "
              f"default settings, previews every {PREVIEW_SECONDS} s; device "
              f"{client.info()['device']}")
        events, total = run(client, layer, buffer.getvalue())
        report("idle machine", events, total)
        events, total = run(client, layer, buffer.getvalue(), busy_after=total / 2)
        report("busy from half-way (a spinning process per core)", events, total)
    finally:
        process.terminate()
        process.wait(30)


if __name__ == "__main__":
    main()
