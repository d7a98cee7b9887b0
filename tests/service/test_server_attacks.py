"""Attacks a hostile local user can make on the running server, each reproduced against the real
server process: someone else's job cancelled, results starved by a flood, a huge multi-frame
message, one client taking the whole queue or a ruinous job, a decoder outside the allow-list."""
import json
import re
import subprocess
import sys
import threading
import time

import psutil
import pytest
import zmq

from nst_contract import protocol
from nst_contract.client import JobEventKind, ServerError, ServerUnavailable
from nst_server.engine.plans import iteration_schedule
from nst_server.engine.presets import PRESETS
from support import LONG, QUICK, layer, stylize


STREAM = {"queued", "progress", "preview", "alive"}  # a job's own messages, never an answer


def raw(endpoint, *parts_list, timeout_ms=5000):
    """Send each message from one DEALER connection and collect its answer (error, ok, pong,
    info, accepted), skipping the stream of jobs already accepted; nothing on silence."""
    context = zmq.Context.instance()
    with context.socket(zmq.DEALER) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        replies = []
        for parts in parts_list:
            sock.send_multipart(parts)
            while sock.poll(timeout_ms):
                reply = json.loads(sock.recv_multipart()[0])
                if reply["type"] not in STREAM:
                    replies.append(reply)
                    break
        return replies


def header(**fields):
    return json.dumps(dict(fields, v=protocol.VERSION)).encode()


def running_job(server, style_png, settings=LONG):
    """Start a job from its own client in a thread; return (events list, outcome dict, thread)
    once it runs."""
    events, outcome = [], {}

    def run():
        try:
            stylize(server.client(), layer(), style_png, settings, on_event=events.append)
            outcome["end"] = "result"
        except Exception as exc:  # the thread reports what ended it
            outcome["end"] = type(exc).__name__

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while not any(e.kind is JobEventKind.PROGRESS for e in events):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)
    return events, outcome, thread


def test_no_one_but_its_owner_can_cancel_or_keep_a_job(server, style_png):
    """Ids are unguessable and not published; knowing one is not enough to cancel, finish or
    heartbeat; the victim's job runs to its end."""
    events, outcome, thread = running_job(server, style_png, dict(QUICK, iterations=25))
    job = events[0].job
    info = server.client().info()
    assert job not in json.dumps(info) and events[0].token not in json.dumps(info)
    attacks = [header(type="cancel", job="job-1"), header(type="cancel", job=job),
               header(type="cancel", job=job, token="guess"), header(type="heartbeat", job=job),
               header(type="finish", job=job), header(type="finish", job=job, token="guess")]
    replies = raw(server.endpoint, *[[attack] for attack in attacks])
    assert [r["code"] for r in replies] == [protocol.UNKNOWN_JOB] * 6, replies
    thread.join(120)
    assert outcome["end"] == "result"


def test_an_old_job_id_and_token_mean_nothing_after_a_restart(start_server, style_png):
    first = start_server()
    events, _, thread = running_job(first, style_png)
    old = events[0]
    first.stop()
    thread.join(30)
    second = start_server(endpoint=first.endpoint)
    events, outcome, thread = running_job(second, style_png, dict(QUICK, iterations=25))
    assert events[0].job != old.job
    replies = raw(second.endpoint, [header(type="cancel", job=old.job, token=old.token)],
                  [header(type="cancel", job=events[0].job, token=old.token)])
    assert [r["code"] for r in replies] == [protocol.UNKNOWN_JOB] * 2
    thread.join(120)
    assert outcome["end"] == "result"


FLOODER = """
import sys, time, zmq
context = zmq.Context()
sockets = []
for _ in range(3):
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(sys.argv[1])
    sockets.append(sock)
ping = b'{"v": 1, "type": "ping"}'
print("flooding", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    for sock in sockets:
        for _ in range(200):
            sock.send(ping)
"""


def test_a_ping_flood_does_not_starve_another_clients_job(server, style_png):
    """Three connections send pings as fast as they can, never reading; meanwhile another
    client's job must still get its progress and its result."""
    flooder = subprocess.Popen([sys.executable, "-c", FLOODER, server.endpoint, "60"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout.readline().strip() == "flooding"
        time.sleep(1)
        start = time.monotonic()
        result = stylize(server.client(), layer(), style_png, dict(QUICK, iterations=6))
        took = time.monotonic() - start
        assert flooder.poll() is None, "the flood ended before the job did"
    finally:
        flooder.kill()
        flooder.wait()
    assert result.size == layer().size
    print(f"\njob under a ping flood: {took:.1f} s")


def test_a_huge_multi_frame_message_is_cut_off_before_it_is_buffered(server):
    """8 frames of 200 MB (1.6 GB) in one `ping`: the connection is closed once the message
    passes the whole-message limit, so the server's memory grows by at most that limit."""
    process = psutil.Process(server.process.pid)
    limit = server.client().info()["limits"]["max_message_bytes"]
    before = process.memory_info().rss
    frame = bytes(200 * 2**20)
    context = zmq.Context.instance()
    with context.socket(zmq.DEALER) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(server.endpoint)
        sock.send_multipart([header(type="ping"), *[frame] * 8], copy=False)
        assert not sock.poll(5000), "a 1.6 GB message was answered"
    del frame
    growth = process.memory_info().rss - before
    print(f"\nserver RSS growth after a 1.6 GB message: {growth / 2**20:.0f} MiB "
          f"(limit {limit / 2**20:.0f} MiB)")
    assert growth < limit + 100 * 2**20
    assert server.client().ping() < 1


def test_too_many_frames_are_cut_off(server):
    replies = raw(server.endpoint, [header(type="ping"), *[b"x"] * 1000], timeout_ms=2000)
    assert replies == []
    assert server.client().ping() < 1


def test_one_connection_cannot_take_the_whole_queue(server, style_png):
    image = layer(alpha=False)
    submit = [header(type="submit", width=image.width, height=image.height, channels=3,
                     settings=LONG), image.tobytes(), style_png]
    replies = raw(server.endpoint, submit, submit, submit)
    kinds = [r["type"] for r in replies]
    assert kinds[:2] == ["accepted", "accepted"], replies
    assert replies[2]["type"] == "error" and replies[2]["code"] == protocol.BUSY
    assert f"already has {protocol.DEFAULT_MAX_JOBS_PER_CLIENT} jobs" in replies[2]["message"]
    deadline = time.monotonic() + 3 + 5  # abandoned by the closed connection: dropped
    while server.client().info()["busy"] or server.client().info()["queue_length"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_ruinous_job_is_refused_with_its_cost(server, style_png):
    """Size 4096 x 10,000 iterations on a 1600x1200 layer (the working size never exceeds the
    layer): refused at once with what it would cost and what to change. Its plan, the default
    preset's scales of the layer sharing 10,000 iterations, costs at least each scale's pixels
    times its iterations (1.2e10), more where the server's memory splits it into blocks with
    halos: over the limit on any machine."""
    big = layer(size=(1600, 1200), alpha=False)
    with pytest.raises(ServerError) as raised:
        server.client().stylize(big.tobytes(), 1600, 1200, 3, style_png,
                                {"size": 4096, "iterations": 10000},
                                should_cancel=lambda: True)  # accepted: cancelled, not run for days
    assert raised.value.code == protocol.TOO_COSTLY
    schedule = iteration_schedule(PRESETS["balanced"].scales, 10000)
    least = sum(round(1600 * f) * round(1200 * f) * n for f, n in schedule)
    stated = re.search(rf"would take (\S+) pixel-iterations \({len(schedule)} scales up to "
                       r"1600x1200 px\)", raised.value.message)
    assert stated and float(stated[1]) >= least > protocol.DEFAULT_MAX_COST, raised.value.message
    assert f"limit of {protocol.DEFAULT_MAX_COST:.3g}" in raised.value.message
    assert "smaller working size, fewer iterations" in raised.value.message
    info = server.client().info()
    assert info["limits"]["max_cost"] == protocol.DEFAULT_MAX_COST and not info["busy"]


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n%%EndComments\n"
       b"newpath 0 0 moveto 32 32 lineto stroke\nshowpage\n%%EOF\n")


def test_only_the_listed_decoders_see_client_bytes(server):
    """An EPS file (Pillow would hand it to Ghostscript) is refused as not a listed format."""
    with pytest.raises(ServerError) as raised:
        stylize(server.client(), layer(), EPS)
    assert raised.value.code == protocol.BAD_IMAGE
    assert "style image: not a PNG, JPEG, WEBP, TIFF, BMP or GIF image" in raised.value.message


def test_connections_are_bounded(start_server):
    """Past --max-clients connections, a new one is closed at once; once the others leave, the
    server takes new ones again."""
    small = start_server("--max-clients", "3")
    sockets = []
    try:
        for _ in range(3):
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(small.endpoint)
            sock.send(header(type="ping"))
            assert sock.poll(5000)
            sockets.append(sock)
        with pytest.raises(ServerUnavailable):
            small.client(timeout=1).ping()
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(0.5)
    assert small.client().ping() < 1
