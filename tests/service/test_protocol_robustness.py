"""Robustness: over a thousand malformed messages of every kind at a real server, each answered
with its specific error (or, for messages over the size or frame limits, cut off unanswered);
then a normal job still succeeds and the server's memory has stayed bounded."""
import io
import json
import random

import psutil
import pytest
import zmq
from PIL import Image

from nst_contract import protocol
from nst_server.engine.samples import photo

MAX_PIXELS = 1_000_000
MAX_MESSAGE = 4 * 1024 * 1024
TOTAL = 1200


def header(**fields):
    return json.dumps(dict({"v": 1}, **fields)).encode()


def submit(rng, pixels=None, **overrides):
    """A submit that is well-formed except for `overrides` (and `pixels`, if given)."""
    fields = dict(type="submit", width=16, height=16, channels=3, settings={})
    fields.update(overrides)
    return [header(**fields), rng.randbytes(16 * 16 * 3) if pixels is None else pixels, STYLE]


def nested(depth):
    """A ping whose extra field is `depth` arrays deep (valid JSON)."""
    return b'{"v": 1, "type": "ping", "x": ' + b"[" * depth + b"]" * depth + b"}"


def png(side):
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")
    return buffer.getvalue()


STYLE = png(16)  # a valid (tiny) PNG where the style is not what is under test
NOISE = io.BytesIO()
Image.effect_noise((64, 64), 64).save(NOISE, "PNG")
NOISE = NOISE.getvalue()  # a PNG whose pixel data spans most of the file
BOMBS = [png(2000), png(5000)]  # tiny files, millions of pixels once decoded
CASES = [  # (name, generator(rng) -> message parts, expected error code or None for "dropped")
    ("empty header", lambda r: [b""], protocol.BAD_MESSAGE),
    ("random bytes", lambda r: [r.randbytes(r.randint(1, 300))], protocol.BAD_MESSAGE),
    ("truncated json", lambda r: [header(type="ping")[:r.randint(1, 10)]], protocol.BAD_MESSAGE),
    ("json not an object", lambda r: [json.dumps(r.choice([[1, 2], "ping", 3, None])).encode()],
     protocol.BAD_MESSAGE),
    ("invalid utf-8", lambda r: [b'{"v": 1, "type": "\xff\xfe"}'], protocol.BAD_MESSAGE),
    ("huge header", lambda r: [b'{"v": 1, "type": "ping", "x": "' + b"a" * 70000 + b'"}'],
     protocol.BAD_MESSAGE),
    ("no version", lambda r: [json.dumps({"type": "ping"}).encode()], protocol.BAD_VERSION),
    ("wrong version", lambda r: [json.dumps({"v": r.choice([0, 2, 99, "1", None]),
                                             "type": "ping"}).encode()], protocol.BAD_VERSION),
    ("unknown type", lambda r: [header(type=r.choice(["pong", "stylize", "", "PING", "rm -rf"]))],
     protocol.UNKNOWN_TYPE),
    ("type not a string", lambda r: [header(type=r.choice([1, None, ["ping"], {}]))],
     protocol.BAD_FIELD),
    ("extra frames on ping", lambda r: [header(type="ping"), b"x"], protocol.BAD_FRAMES),
    ("submit missing frames", lambda r: [header(type="submit", width=16, height=16, channels=3)],
     protocol.BAD_FRAMES),
    ("id not a string", lambda r: [header(type="info", id=r.choice([1, [], {}]))], protocol.BAD_FIELD),
    ("width wrong type", lambda r: submit(r, width=r.choice(["16", 16.5, None, True, [16]])),
     protocol.BAD_FIELD),
    ("channels wrong", lambda r: submit(r, channels=r.choice([0, 1, 2, 5, "4"])), protocol.BAD_FIELD),
    ("zero or negative size", lambda r: submit(r, width=r.choice([0, -1, -640]), height=16),
     protocol.BAD_FIELD),
    ("too small to stylize", lambda r: submit(r, width=r.randint(1, 15), height=16),
     protocol.BAD_FIELD),
    ("huge dimensions", lambda r: submit(r, width=r.choice([70000, 10**9]), height=70000,
                                         pixels=b"x"), protocol.TOO_LARGE),
    ("over max pixels", lambda r: submit(r, width=2000, height=2000, pixels=b"x"),
     protocol.TOO_LARGE),
    ("pixel length mismatch", lambda r: submit(r, pixels=r.randbytes(r.choice([0, 1, 767, 769]))),
     protocol.BAD_PIXELS),
    ("settings not an object", lambda r: submit(r, settings=r.choice([[], "fast", 3])),
     protocol.BAD_SETTINGS),
    ("unknown preset", lambda r: submit(r, settings={"preset": r.choice(["turbo", "", 3])}),
     protocol.BAD_SETTINGS),
    ("out-of-range setting", lambda r: submit(r, settings=r.choice(
        [{"strength": -1}, {"size": 10**6}, {"iterations": 0}, {"seed": -5},
         {"preserve_colors": "yes"}, {"preserve_exposure": 1}, {"init": "zeros"}, {"tv_weight": "a lot"}])),
     protocol.BAD_SETTINGS),
    ("unknown setting", lambda r: submit(r, settings={"sharpen": True}), protocol.BAD_SETTINGS),
    ("preview_seconds wrong", lambda r: submit(r, preview_seconds=r.choice([-1, "2", 0.1, 61, True])),
     protocol.BAD_FIELD),
    ("preview_side wrong", lambda r: submit(r, preview_side=r.choice([0, 2000, 1.5, "big"])),
     protocol.BAD_FIELD),
    ("finish unknown job", lambda r: [header(type="finish", job=f"job-{r.randint(10**6, 10**7)}")],
     protocol.UNKNOWN_JOB),
    ("cancel unknown job", lambda r: [header(type="cancel", job=f"job-{r.randint(10**6, 10**7)}")],
     protocol.UNKNOWN_JOB),
    ("cancel without job", lambda r: [header(type="cancel")], protocol.BAD_FIELD),
    ("heartbeat unknown job", lambda r: [header(type="heartbeat", job="nope")], protocol.UNKNOWN_JOB),
    ("oversize frame", lambda r: [header(type="ping"), b"\0" * (MAX_MESSAGE + 1)], None),
    ("oversize message in small frames", lambda r: [header(type="submit"), *[b"\0" * (MAX_MESSAGE // 3)] * 3],
     None),
    ("too many frames", lambda r: [header(type="ping"), *[b"x"] * r.randint(protocol.MAX_FRAMES, 500)],
     None),
    ("deep nesting", lambda r: [nested(r.choice([40, 1200, 30000]))], protocol.BAD_MESSAGE),
    ("non-finite number", lambda r: submit(r, settings={r.choice(["iterations", "seed", "size", "strength"]):
                                                        float(r.choice(["inf", "-inf", "nan"]))}),
     protocol.BAD_SETTINGS),
    ("version true", lambda r: [json.dumps({"v": True, "type": "ping"}).encode()], protocol.BAD_VERSION),
]
# Cases whose submit is well-formed but whose style frame is bad: answered by the worker.
STYLE_CASES = [
    ("style not an image", lambda r: r.randbytes(r.randint(0, 2000))),
    ("style truncated", lambda r: NOISE[:r.randint(8, len(NOISE) // 2)]),
    ("decompression bomb", lambda r: r.choice(BOMBS)),
]


@pytest.fixture(scope="module")
def fuzzed_server():
    from support import ServerProcess
    process = ServerProcess("--max-pixels", str(MAX_PIXELS), "--max-message-bytes", str(MAX_MESSAGE))
    yield process
    process.stop()


def ask(context, endpoint, parts, timeout_ms=5000):
    """Send raw parts from a fresh DEALER; return the first reply header (None if none came)."""
    with context.socket(zmq.DEALER) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        sock.send_multipart(parts)
        replies = []
        while sock.poll(timeout_ms):
            reply = json.loads(sock.recv_multipart()[0])
            replies.append(reply)
            if reply["type"] in ("error", "pong", "info", "ok", "result", "cancelled"):
                return replies
            timeout_ms = 5000
        return replies or None


def test_a_thousand_malformed_messages_then_a_normal_job(fuzzed_server, style_png):
    rng = random.Random(20261124)
    context = zmq.Context.instance()
    server = psutil.Process(fuzzed_server.process.pid)
    normal_job(fuzzed_server, style_png)  # warm up: model variants and allocator pools exist
    rss_before = server.memory_info().rss
    seen = {}
    for i in range(TOTAL):
        if i % 10 == 9:
            name, make = rng.choice(STYLE_CASES)
            parts = submit(rng)
            parts[2] = make(rng)
            expected = protocol.BAD_IMAGE
        else:
            name, make, expected = CASES[i % len(CASES)] if i < len(CASES) * 2 else rng.choice(CASES)
            parts = make(rng)
        replies = ask(context, fuzzed_server.endpoint, parts, timeout_ms=300 if expected is None else 5000)
        if expected is None:
            assert replies is None, f"{name}: oversize frame was answered: {replies}"
        else:
            assert replies and replies[-1]["type"] == "error", f"{name}: {replies}"
            assert replies[-1]["code"] == expected, f"{name}: {replies[-1]}"
        seen[name] = seen.get(name, 0) + 1
    assert set(seen) == {c[0] for c in CASES} | {c[0] for c in STYLE_CASES}

    assert fuzzed_server.client().ping() < 1
    assert normal_job(fuzzed_server, style_png) != photo("coffee").resize((64, 48)).tobytes()
    growth = (server.memory_info().rss - rss_before) / 2**20
    print(f"\nserver RSS after {TOTAL} malformed messages and a normal job: "
          f"{server.memory_info().rss / 2**20:.0f} MiB ({growth:+.0f} MiB)")
    assert growth < 100


def normal_job(server, style_png):
    source = photo("coffee").resize((64, 48))
    pixels = server.client().stylize(source.tobytes(), 64, 48, 3, style_png,
                                     {"preset": "fast", "size": 64, "iterations": 3})
    assert len(pixels) == 64 * 48 * 3
    return pixels
