"""The service on its own: the real server (socket loop, admission, worker, queue) in this process
on a loopback port, driven by the real client, around a fake engine (tests/support.py) — what
the service does with a job, whatever paints it."""
import threading

import numpy as np
import pytest
from PIL import Image

from nst_contract import protocol
from nst_contract.client import Client, JobEventKind, ServerError
from nst_server.service.admission import Limits
from nst_server.service.server import Server
from support import FakeEngine, free_endpoint, layer


@pytest.fixture
def serve():
    """Factory: serve(engine, **limits) -> (a Client of a running Server, the Server)."""
    running = []

    def start(engine, **limits):
        server = Server(engine, free_endpoint(), Limits(**limits), unload_after=600)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return Client(server.endpoint, timeout=5), server

    yield start
    for server, thread in running:
        server.stop()
        thread.join(15)


def submit(client, image, painting, settings, **kwargs):
    return client.stylize(image.tobytes(), image.width, image.height, len(image.getbands()),
                          painting, settings, **kwargs)


def test_a_job_streams_the_engines_progress_then_its_result(serve, style_png):
    engine = FakeEngine()
    client, _ = serve(engine)
    image, events = layer(), []
    pixels = submit(client, image, style_png, {"iterations": 5}, on_event=events.append)
    result = np.asarray(Image.frombytes("RGBA", image.size, pixels))
    assert np.array_equal(result[..., :3], 255 - np.asarray(image)[..., :3])
    assert np.array_equal(result[..., 3], np.asarray(image)[..., 3])
    kinds = [e.kind for e in events]
    assert kinds[0] is JobEventKind.ACCEPTED and kinds[-1] is JobEventKind.RESULT
    assert [e.iteration for e in events if e.kind is JobEventKind.PROGRESS] == [1, 2, 3, 4, 5]
    assert engine.jobs[0]["iterations"] == 5 and engine.jobs[0]["preset"]  # validated settings


def test_the_engines_estimate_prices_a_job(serve, style_png):
    client, _ = serve(FakeEngine(), max_cost=64 * 72 * 10)
    image = layer()
    submit(client, image, style_png, {"iterations": 10})  # at the limit: accepted
    with pytest.raises(ServerError) as refused:
        submit(client, image, style_png, {"iterations": 11})
    assert refused.value.code == protocol.TOO_COSTLY
    assert "5.07e+04 pixel-iterations (1 scales up to 72x64 px)" in str(refused.value)  # 72*64*11


def test_finish_early_ends_the_running_job_with_its_current_image(serve, style_png):
    client, _ = serve(FakeEngine(step_seconds=0.05))
    events = []

    def finish():
        return sum(e.kind is JobEventKind.PROGRESS for e in events) >= 3

    submit(client, layer(), style_png, {"iterations": 1000}, on_event=events.append,
           should_finish=finish)
    progress = [e for e in events if e.kind is JobEventKind.PROGRESS]
    assert events[-1].kind is JobEventKind.RESULT and events[-1].early
    assert 3 <= len(progress) < 1000


def test_an_engine_failure_costs_one_job_not_the_server(serve, style_png):
    client, _ = serve(FakeEngine(fail_with=RuntimeError("the device fell over")))
    with pytest.raises(ServerError) as failed:
        submit(client, layer(), style_png, {"iterations": 3})
    assert failed.value.code == protocol.INTERNAL and "the device fell over" in str(failed.value)
    assert client.ping() < 1.0 and client.info()["queue_length"] == 0


def test_a_model_that_cannot_load_stops_the_server_saying_why():
    server = Server(FakeEngine(load_error="weights file is not a VGG19 state dict"),
                    free_endpoint(), Limits(), unload_after=600)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive()  # the loop ended on its own
    assert server.failure == "weights file is not a VGG19 state dict"
