"""The client against a scripted peer on a real loopback socket: the message orders a real
server produces only by timing races, made to happen every time."""
import threading

import pytest
import zmq

from nst_contract import protocol
from nst_contract.client import Client, ServerError


def scripted_server(replies):
    """A ROUTER that answers the first message it gets with `replies` (lists of frames), then
    leaves. Returns (endpoint, thread)."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def serve():
        identity = router.recv_multipart()[0]
        for parts in replies:
            router.send_multipart([identity, *parts])
        router.poll(2000)
        router.close()

    thread = threading.Thread(target=serve)
    thread.start()
    return f"tcp://127.0.0.1:{port}", thread


def test_unknown_job_from_a_heartbeat_that_crossed_the_end_is_not_fatal():
    pixels = bytes(16 * 16 * 3)
    endpoint, thread = scripted_server([
        protocol.encode("accepted", job="job-1", position=0),
        protocol.encode("error", code=protocol.UNKNOWN_JOB, message="no job 'job-1'"),
        protocol.encode("result", [pixels], job="job-1", width=16, height=16, channels=3,
                        elapsed=0.1),
    ])
    assert Client(endpoint, timeout=3).stylize(pixels, 16, 16, 3, b"png") == pixels
    thread.join()


def test_a_job_error_still_ends_the_call():
    endpoint, thread = scripted_server([
        protocol.encode("accepted", job="job-1", position=0),
        protocol.encode("error", job="job-1", code=protocol.BAD_IMAGE, message="not an image"),
    ])
    with pytest.raises(ServerError) as raised:
        Client(endpoint, timeout=3).stylize(bytes(16 * 16 * 3), 16, 16, 3, b"png")
    assert raised.value.code == protocol.BAD_IMAGE
    thread.join()
