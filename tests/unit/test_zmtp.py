"""The standard-library ZeroMQ client (nst_contract.zmtp) against hostile peers on a raw loopback socket:
every broken or malicious answer ends the call with a clear error within its timeout, with
bounded memory, never a hang. (Interoperability with real libzmq is the whole server suite,
which runs through this client.)"""
import socket
import struct
import threading
import time
import tracemalloc

import pytest

from nst_contract import protocol
from nst_contract.client import Client, NotAServer, ServerUnavailable
from nst_contract.zmtp import GREETING

TIMEOUT = 1.5
READY_BODY = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 6) + b"ROUTER"
READY = bytes([0x04, len(READY_BODY)]) + READY_BODY  # a ROUTER's READY command


def greeting(mechanism=b"NULL", major=3):
    return GREETING[:10] + bytes([major, 0]) + mechanism.ljust(20, b"\0") + GREETING[32:]


def long_frame(size, flags=0x02):
    return struct.pack(">BQ", flags, size)


def hostile_peer(*chunks, close=False):
    """A TCP server that answers one connection with `chunks` (then closes, or stays silent)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        connection, _ = listener.accept()
        with connection:
            for chunk in chunks:
                connection.sendall(chunk)
            if not close:
                connection.settimeout(TIMEOUT + 3)
                try:
                    while connection.recv(65536):
                        pass
                except OSError:
                    pass
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{listener.getsockname()[1]}"


CASES = [
    ("an HTTP server", [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 2], NotAServer,
     "not ZeroMQ's"),
    ("a CURVE-only server", [greeting(b"CURVE")], NotAServer, "'CURVE' security mechanism"),
    ("an old ZMTP 2 peer", [greeting(major=1)], NotAServer, "ZMTP 1.x"),
    ("a frame claiming 1 TB", [greeting(), READY, long_frame(2**40)], NotAServer,
     "over the limit"),
    ("a 'negative' (2^64 - 1) length", [greeting(), READY, long_frame(2**64 - 1)], NotAServer,
     "over the limit"),
    ("a command claiming 4 GB", [greeting(), long_frame(2**32, flags=0x06)], NotAServer,
     "over the limit"),
    ("bad frame flags", [greeting(), READY, b"\xf0\x01x"], NotAServer, "bad frame flags"),
    ("too many frames", [greeting(), READY, b"\x01\x00" * 100], NotAServer,
     f"over {protocol.MAX_FRAMES} frames"),
    ("a truncated frame, then goodbye", [greeting(), READY, b"\x00\x64" + b"x" * 10],
     ServerUnavailable, "stopped answering|could not be reached"),  # as the close races the handshake
    ("half a greeting, then silence", [greeting()[:20]], ServerUnavailable, "could not be reached"),
    ("silence", [], ServerUnavailable, "could not be reached"),
    ("a greeting, then silence", [greeting(), READY], ServerUnavailable, "did not answer"),
]


@pytest.mark.parametrize("name, chunks, error, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_peers_end_the_call_with_a_clear_error_in_time(name, chunks, error, words):
    endpoint = hostile_peer(*chunks, close="goodbye" in name)
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(error, match=words):
            Client(endpoint, timeout=TIMEOUT).ping()
        took = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert took < TIMEOUT + 0.5, f"{name}: {took:.1f} s"
    assert peak < 2 * 2**20, f"{name}: {peak} bytes allocated"


def test_a_refused_connection_is_reported_at_once():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(ServerUnavailable, match="could not be reached"):
        Client(endpoint, timeout=TIMEOUT).ping()
    assert time.monotonic() - start < 0.5
