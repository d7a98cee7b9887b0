"""End to end in a real GIMP 3.0 and 3.2 (every test runs on both): the plug-in installed by
install.py into a fresh HOME's GIMP folder, a real nst-server on the host, the procedure driven
through gimp-console-3.x batch mode (and the full GIMP under Xvfb for the dialog).

Skips with the reason where GIMP 3 cannot be set up, unless NST_REQUIRE_GIMP=1 (CI), where
that is a failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import REPO, VERSIONS, GimpSession, gimp_root, run_filter  # noqa: E402

from support import free_endpoint  # noqa: E402
from nst_server.engine.evaluate import palette_distance  # noqa: E402
from nst_server.engine.images import mean_lightness  # noqa: E402
from nst_server.engine.samples import painting, photo  # noqa: E402
from nst_server.engine.yardstick import layout_correlation  # noqa: E402

FAST = {"preset": "fast", "custom-size": True, "size": 64}
LONG_RUN = dict(FAST, preset="best", size=256)  # on large.png: long enough to act on mid-run
# A GTK/GDK/GIMP-widget `g_return_if_fail` message: GTK's own, not the plug-in's
GTK_ASSERTION = re.compile(r"-CRITICAL\b.*: assertion '[^']*' failed")


@pytest.fixture(scope="module", params=VERSIONS)
def gimp(request):
    """(version, root) of a real GIMP; the module's tests run once per version."""
    found, reason = gimp_root(request.param)
    if found is None:
        if os.environ.get("NST_REQUIRE_GIMP") == "1":
            pytest.fail(f"NST_REQUIRE_GIMP=1 but {reason}")
        pytest.skip(reason)
    return request.param, found


@pytest.fixture(scope="module")
def session(gimp, server):
    session = GimpSession(gimp[1], gimp[0])
    session.install(server.endpoint)
    yield session
    session.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    painting("swirls", 128).save(folder / "starry_night.png")
    painting("embers", 128).save(folder / "embers.png")
    photo("astronaut").resize((96, 80), Image.LANCZOS).save(folder / "photo.png")
    # LONG_RUN on this lasts ~50 s on this CPU in bf16 (~16 s on photo.png): room to act mid-run
    photo("astronaut").resize((400, 330), Image.LANCZOS).save(folder / "large.png")
    rgba = photo("coffee").resize((96, 64), Image.LANCZOS).convert("RGBA")
    alpha = np.full((64, 96), 255, np.uint8)
    alpha[:, :30] = 0                      # a fully transparent band
    alpha[40:, 50:] = 90                   # and a half-transparent corner
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(folder / "cutout.png")
    photo("chelsea").convert("L").resize((90, 60), Image.LANCZOS).save(folder / "gray.png")
    Image.eval(Image.open(folder / "photo.png"), lambda v: v * 0.3).save(folder / "night.png")
    rng = np.random.default_rng(0)
    for name, colour in (("red", (230, 40, 30)), ("blue", (30, 60, 230))):  # strokes of one hue
        shade = rng.random((96, 24)).repeat(4, axis=1)[..., None]
        Image.fromarray((np.asarray(colour) * (0.55 + 0.45 * shade)).astype(np.uint8)).save(
            folder / f"{name}.png")
    return folder


def test_new_layer_above_the_source_with_its_name_size_offsets_and_the_style(
        session, files, evaluator, style):
    report, layers = run_filter(session, files / "photo.png",
                                dict(FAST, **{"style-file": str(files / "starry_night.png")}),
                                offsets=[7, 5])
    assert report["registered"] and report["status"] == "success", report
    new, source = report["layers"][:2]
    assert new["name"] == "Neural Style: starry_night"
    assert new["size"] == source["size"] == [96, 80]
    assert new["offsets"] == source["offsets"] == [7, 5]
    assert not new["mask"]
    result, original = Image.open(layers[0]).convert("RGB"), Image.open(layers[1]).convert("RGB")
    assert np.abs(np.asarray(result, float) - np.asarray(original, float)).mean() > 5
    assert evaluator.style_loss(result, style) < 0.5 * evaluator.style_loss(original, style)


def test_alpha_of_the_source_is_preserved(session, files):
    report, layers = run_filter(session, files / "cutout.png",
                                dict(FAST, **{"style-file": str(files / "starry_night.png")}))
    assert report["status"] == "success", report
    assert report["layers"][0]["alpha"]
    result, source = Image.open(layers[0]), Image.open(layers[1])
    assert np.array_equal(np.asarray(result.getchannel("A")), np.asarray(source.getchannel("A")))


def test_a_selection_gives_the_new_layer_a_mask(session, files):
    report, _ = run_filter(session, files / "photo.png",
                           dict(FAST, **{"style-file": str(files / "starry_night.png")}),
                           select=[10, 10, 40, 30])
    assert report["status"] == "success", report
    assert report["layers"][0]["mask"] and not report["layers"][1]["mask"]
    # the new layer is the one selected, its pixels (not its mask) what the user paints on next
    assert report["selected"] == ["Neural Style: starry_night"]
    assert not report["layers"][0]["edit_mask"], report["layers"]


def halves_of(layer_png):
    """Mean RGB of the left and right thirds of a result."""
    pixels = np.asarray(Image.open(layer_png).convert("RGB"), float)
    third = pixels.shape[1] // 3
    return pixels[:, :third].reshape(-1, 3).mean(0), pixels[:, -third:].reshape(-1, 3).mean(0)


def test_regions_from_the_selection_put_a_painting_inside_and_another_outside(session, files):
    report, layers = run_filter(session, files / "photo.png", dict(FAST, size=96, regions="selection", **{
        "style-file": str(files / "red.png"), "style-file-2": str(files / "blue.png")}),
        select=[0, 0, 48, 80])
    assert report["status"] == "success", report
    assert report["layers"][0]["name"] == "Neural Style: red + blue"
    assert not report["layers"][0]["mask"]  # the whole layer is painted: no mask
    inside, outside = halves_of(layers[0])
    assert inside[0] > inside[2] + 40 and outside[2] > outside[0] + 40, (inside, outside)


def test_regions_by_a_channel_without_a_second_painting_keep_the_photo_outside(session, files):
    report, layers = run_filter(session, files / "photo.png", dict(FAST, size=96, regions="channel", **{
        "style-file": str(files / "red.png"), "region-channel": "the right half"}),
        channel=[48, 0, 48, 80])
    assert report["status"] == "success", report
    result, photo_ = (np.asarray(Image.open(p).convert("RGB"), float) for p in layers[:2])
    kept = np.abs(result[:, :32] - photo_[:, :32]).mean()
    painted = np.abs(result[:, -32:] - photo_[:, -32:]).mean()
    assert kept < 0.4 * painted and result[:, -32:, 0].mean() > result[:, -32:, 2].mean() + 40, \
        (kept, painted)


def test_regions_by_a_label_layer_give_each_colour_its_painting(session, files):
    """A layer of three flat colours: the commonest (the left 50 px) takes the painting, the
    next (30 px) the second painting; the third colour has no painting and keeps the photo."""
    report, layers = run_filter(session, files / "photo.png", dict(
        FAST, size=96, regions="label-layer", **{"style-file": str(files / "red.png"),
                                                 "style-file-2": str(files / "blue.png"),
                                                 "region-layer": "the labels"}),
        labels=[[0, 0, 50, 80, [200, 30, 30]], [50, 0, 30, 80, [30, 200, 30]],
                [80, 0, 16, 80, [30, 30, 200]]])
    assert report["status"] == "success", report
    assert [layer["name"] for layer in report["layers"]] == \
        ["Neural Style: red + blue", "Background", "labels"]
    result, photo_ = (np.asarray(Image.open(p).convert("RGB"), float) for p in layers[:2])
    red, blue = result[:, 4:42].reshape(-1, 3).mean(0), result[:, 56:74].reshape(-1, 3).mean(0)
    assert red[0] > red[2] + 40 and blue[2] > blue[0] + 40, (red, blue)
    kept = np.abs(result[:, 86:] - photo_[:, 86:]).mean()
    assert kept < 0.5 * np.abs(result[:, 4:42] - photo_[:, 4:42]).mean(), kept


def test_regions_from_an_empty_selection_are_refused_with_what_to_do(session, files):
    report, _ = run_filter(session, files / "photo.png", dict(FAST, regions="selection", **{
        "style-file": str(files / "red.png")}))
    assert report["status"] == "execution-error"
    assert "select the part to paint first" in report["message"] and len(report["layers"]) == 1


def test_grayscale_image_gets_a_grayscale_result(session, files):
    report, layers = run_filter(session, files / "gray.png",
                                dict(FAST, **{"style-file": str(files / "starry_night.png")}))
    assert report["status"] == "success", report
    assert report["base_type"] == "gray"
    assert report["layers"][0]["type"].startswith("gray")
    assert report["layers"][0]["size"] == [90, 60]


def test_the_brush_size_reaches_the_painting(session, files):
    """`style-scale` goes to the server: the same run with the painting seen at a quarter and
    at four times the size paints differently."""
    results = []
    for scale in (0.25, 4.0):
        report, layers = run_filter(session, files / "photo.png", dict(
            FAST, **{"style-file": str(files / "starry_night.png"), "style-scale": scale}))
        assert report["status"] == "success", report
        results.append(np.asarray(Image.open(layers[0]).convert("RGB"), float))
    assert np.abs(results[0] - results[1]).mean() > 2


def test_keep_the_photos_exposure_reaches_the_painting(session, files):
    """`preserve-exposure` goes to the server: a night photo stays dark with it, and takes
    much of the lighter painting's lightness without it."""
    def lightness(path):
        return mean_lightness(Image.open(path).convert("RGB"))

    night, painting_key = lightness(files / "night.png"), lightness(files / "starry_night.png")
    results = {}
    for kept in (True, False):
        report, layers = run_filter(session, files / "night.png", dict(
            FAST, **{"style-file": str(files / "starry_night.png"), "preserve-exposure": kept}))
        assert report["status"] == "success", report
        results[kept] = lightness(layers[0])
    gap = painting_key - night
    assert gap > 25, (night, painting_key)  # L*: a night photo and a day painting
    assert abs(results[True] - night) < 0.25 * gap < results[False] - night, (night, results)


@pytest.mark.parametrize("mix, name", [(0.5, "Neural Style: starry_night + embers"),
                                       (1.0, "Neural Style: embers")])
def test_a_second_painting_blends_in(session, files, mix, name):
    """`style-file-2` with `style-mix`: the new layer is named for the paintings in the blend
    (a painting with no share is left out)."""
    report, _ = run_filter(session, files / "photo.png", dict(FAST, **{
        "style-file": str(files / "starry_night.png"), "style-file-2": str(files / "embers.png"),
        "style-mix": mix}))
    assert report["status"] == "success", report
    assert report["layers"][0]["name"] == name


def test_the_painterly_quality_paints_from_gimp(session, files, style):
    """`preset` painterly (neural neighbours) runs end to end from the dialog: a new layer in the
    painting's colours, the photo's layout kept (its Gram loss is not its yardstick:
    docs/design.md). It paints with one painting: the dialog greys the second painting and its
    Mix out, and the second painting chosen is left out of the run."""
    session.plugin_log.unlink(missing_ok=True)
    report, layers = run_filter(session, files / "photo.png", dict(
        FAST, preset="painterly", size=96, **{"style-file": str(files / "starry_night.png"),
                                              "style-file-2": str(files / "embers.png")}),
        mode="INTERACTIVE")
    assert report["status"] == "success", report
    assert report["layers"][0]["name"] == "Neural Style: starry_night"
    dialog = plugin_log(session, "dialog")[0]
    assert dialog["second_sensitive"] is False and dialog["mix_sensitive"] is False, dialog
    result, original = Image.open(layers[0]).convert("RGB"), Image.open(layers[1]).convert("RGB")
    assert np.abs(np.asarray(result, float) - np.asarray(original, float)).mean() > 5
    assert palette_distance(result, style) < 0.95 * palette_distance(original, style)
    assert layout_correlation(result, original)[0] > 0.5


def test_the_dialog_runs_the_filter_and_remembers_its_values(session, files):
    """The full GIMP under Xvfb: an interactive run opens the dialog (the harness clicks OK) and
    runs; GIMP then remembers the values, so a Repeat-Last run given no arguments at all uses
    the same style file and settings. (One painting: a second would be remembered too, and
    every later interactive run in this GIMP session would blend it in.)"""
    report, _ = run_filter(session, files / "photo.png",
                           dict(FAST, **{"style-file": str(files / "starry_night.png")}),
                           mode="INTERACTIVE", then=["WITH_LAST_VALS"])
    assert report["status"] == "success", report
    assert [run["status"] for run in report["then"]] == ["success"], report
    assert [layer["name"] for layer in report["layers"]] == \
        ["Neural Style: starry_night", "Neural Style: starry_night #1", "Background"]


def test_indexed_image_is_refused(session, files):
    report, _ = run_filter(session, files / "photo.png",
                           dict(FAST, **{"style-file": str(files / "starry_night.png")}),
                           indexed=True)
    assert report["status"] != "success"
    assert "indexed" in report["message"].lower()
    assert len(report["layers"]) == 1  # the image is untouched


def test_a_painting_that_is_not_an_image_is_refused_by_name(session, files, tmp_path):
    notes = tmp_path / "my notes.txt"
    notes.write_text("not a painting")
    report, _ = run_filter(session, files / "photo.png", dict(FAST, **{"style-file": str(notes)}))
    assert report["status"] == "execution-error"
    assert report["message"].startswith("my notes.txt is not an image Neural Style can use: "
                                        "choose a painting saved as PNG, JPEG"), report["message"]
    assert "server" not in report["message"] and len(report["layers"]) == 1


def test_layer_group_is_refused(session, files):
    report, _ = run_filter(session, files / "photo.png",
                           dict(FAST, **{"style-file": str(files / "starry_night.png")}), group=True)
    assert report["status"] == "execution-error"
    assert "layer group" in report["message"]
    assert [layer["name"] for layer in report["layers"]] == ["group", "Background"]


def test_cancelling_in_gimp_drops_the_job_and_leaves_the_image_untouched(session, server, files):
    """GIMP's progress Cancel ends the plug-in process (SIGKILL); here the test does the same
    mid-job. The server must drop the job within its job timeout and the image keep one layer."""
    client, outcome = server.client(), {}
    long_run = dict(LONG_RUN, **{"style-file": str(files / "starry_night.png")})
    runner = threading.Thread(target=lambda: outcome.update(
        report=run_filter(session, files / "large.png", long_run)[0]))
    runner.start()
    deadline = time.monotonic() + 60
    while not client.info()["busy"]:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    assert session.kill_plugin("neural_style")
    killed_at = time.monotonic()
    while client.info()["busy"]:
        assert time.monotonic() - killed_at < 3 + 3, "the server kept computing for nobody"
        time.sleep(0.1)
    runner.join(120)
    report = outcome["report"]
    assert report["status"] != "success"
    assert [layer["name"] for layer in report["layers"]] == ["Background"]


def test_server_down_returns_how_to_start_it_quickly(gimp, files):
    version, root = gimp
    session = GimpSession(root, version)
    try:
        plugin = session.install(free_endpoint())
        config = json.loads((plugin / "config.json").read_text())
        config.pop("server_command")  # as if the installer had not recorded how to start it
        (plugin / "config.json").write_text(json.dumps(config))
        report, _ = run_filter(session, files / "photo.png",
                               dict(FAST, **{"style-file": str(files / "starry_night.png")}))
    finally:
        session.close()
    assert report["status"] == "execution-error"
    assert "not running" in report["message"] and "start --endpoint" in report["message"]
    assert report["seconds"] < 10
    assert len(report["layers"]) == 1


def starting_session(gimp):
    """A session installed for a port where nothing answers, so that the filter starts the
    server (in a Debian root, this virtualenv, its base Python and the repo are bound in at the
    same paths so that the recorded command exists); (session, binds, the server's pid file)."""
    version, root = gimp
    session = GimpSession(root, version)
    binds = sorted({sys.prefix, sys.base_prefix, str(REPO)}) if root != Path("/") else ()
    try:
        session.install(free_endpoint())
    except BaseException:
        session.close()
        raise
    return session, binds, session.home / ".local" / "state" / "neural-style-gimp" / "nst-server.pid"


def test_a_stopped_server_is_started_by_the_filter(gimp, files):
    """Nothing answers, but install.py recorded the server command: the filter starts the server
    in the background, waits for it, and runs. (In a Debian root, this virtualenv, its base
    Python and the repo are bound in at the same paths so that the recorded command exists.)"""
    session, binds, pid_file = starting_session(gimp)
    try:
        report, _ = run_filter(session, files / "photo.png",
                               dict(FAST, **{"style-file": str(files / "starry_night.png")}),
                               binds=binds)
        started = pid_file.exists()
    finally:
        if pid_file.exists():  # the server this test had the plug-in start
            os.kill(json.loads(pid_file.read_text())["pid"], signal.SIGTERM)
            time.sleep(1)
        session.close()
    assert report["status"] == "success", report
    assert started and report["layers"][0]["name"] == "Neural Style: starry_night"


def test_gimps_python_runs_the_plugin_with_nothing_compiled(session):
    """The installed folder is .py files and config alone, and GIMP's own Python imports the
    client from it without pyzmq or any other package (site-packages switched off)."""
    folder = session.plugins / "neural_style"
    source = REPO / "gimp_plugin" / "neural_style"
    installed = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)  # GIMP's cache
    shipped = sorted(str(p.relative_to(source)) for p in source.rglob("*.py")
                     if "__pycache__" not in p.parts)
    assert installed == sorted([*shipped, "config.json"])
    probe = (f"import sys; sys.path.insert(0, {session.path_in_gimp(folder)!r}); "
             "import nst_contract.client; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('zmq', 'numpy')))")
    command = ["/usr/bin/python3", "-I", "-S", "-c", probe]
    if session.root != Path("/"):
        command = ["chroot", str(session.root), *command]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- a run as an artist sees it: the full GIMP under Xvfb, the image on screen -------------------

PAINTING_WINDOW = "^Neural Style: painting$"
IMAGE_WINDOW = "GIMP$"  # the image window's title ends with the application's name
# Edit > Undo (the menu's first item) in GIMP's single window on the runner's 1280x800 screen;
# keys do not reach the canvas without a window manager, clicks do.
UNDO_FROM_THE_MENU = "xdotool mousemove 59 12 click 1; sleep 0.7; xdotool mousemove 127 37 click 1; sleep 1"


def plugin_log(session, kind):
    """The plug-in's log lines of one kind (NST_PLUGIN_LOG), as dicts."""
    if not session.plugin_log.exists():
        return []
    prefix = f" {kind} "
    return [json.loads(line.split(prefix, 1)[1]) for line in session.plugin_log.read_text().splitlines()
            if prefix in line]


def wait_until(condition, timeout=60, what="the condition", context=lambda: ""):
    """Poll `condition`; past `timeout` s, fail saying `what` and the `context()` of that moment."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}{context()}"
        time.sleep(0.2)


def in_background(call):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(value=call()))
    thread.start()
    return thread, outcome


def gui_run(session, files, settings, photo_file="large.png", **job):
    """Start an interactive run on `photo_file` shown in the full GIMP; (thread, outcome)."""
    args = dict(settings, **{"style-file": str(files / "starry_night.png")})
    session.plugin_log.unlink(missing_ok=True)
    return in_background(lambda: run_filter(session, files / photo_file, args,
                                            mode="INTERACTIVE", display=True, **job)[0])


def test_the_painting_shows_on_the_canvas_then_one_undo_step_removes_the_result(session, files):
    """The dialog (main knobs, Regions and Advanced expanders, no duplicate mnemonic, the
    painting's thumbnail, OK), then the plug-in's progress window and one preview layer above the source,
    masked by the selection as the result will be, refreshed while the server works, the user's
    own layer staying the selected one; at the end the preview is gone and the result is one
    layer that one Ctrl+Z removes. The run goes to its end (LONG_RUN on the small photo: ~16 s
    here, ~10 previews)."""
    thread, outcome = gui_run(session, files, LONG_RUN, "photo.png", pause=True,
                              select=[10, 10, 40, 30])
    wait_until(lambda: session.out and (session.out / "ran").exists(), 120, "the run")
    session.gui.do(UNDO_FROM_THE_MENU)
    (session.out / "continue").touch()
    thread.join(60)
    report = outcome["value"]
    assert report["status"] == "success", report
    previews = plugin_log(session, "preview")
    assert len(previews) >= 2, previews
    assert all(p["layers"] == ["Neural Style (preview)", "in.png"] for p in previews), previews
    assert len({p["layer"] for p in previews}) == 1, previews  # one layer, refilled: no flicker
    assert all(p["masked"] and p["selected"] == ["in.png"] for p in previews), previews
    assert plugin_log(session, "result") == [{"early": False}]  # a result layer was made...
    assert [layer["name"] for layer in report["layers"]] == ["in.png"]  # ...and one undo: all gone
    dialog = plugin_log(session, "dialog")[0]
    assert dialog["expanders"] == ["Re_gions: a painting per part", "_Advanced"], dialog
    assert dialog["images_only"], dialog
    assert {"_Painting", "Second pain_ting (optional)", "_Brush size", "Working si_ze"} <= \
        set(dialog["labels"]), dialog
    assert dialog["mix_sensitive"] is False, dialog  # no second painting: nothing to mix
    assert dialog["exposure_sensitive"] is True, dialog  # the photo's colours are not kept
    assert dialog["ok_sensitive"] and dialog["second_sensitive"], dialog
    assert dialog["thumbnail"] == [48, 48], dialog  # starry_night.png is square
    assert "mnemonic" not in report["stderr"].lower(), report["stderr"][-2000:]
    windows = session.gui.windows()
    assert "Neural Style: painting" in windows and not any("Message" in w for w in windows), windows


def press_in_painting_window(session, button):
    """Click "Keep current" or "Cancel" in the plug-in's progress window (at 0,0: no window
    manager), once it shows a preview on the canvas."""
    wait_until(lambda: plugin_log(session, "preview"), 120,
               "a preview on the canvas", lambda: "; the plug-in's log: " + (
                   session.plugin_log.read_text()[-3000:] if session.plugin_log.exists() else "none"))
    click_in_painting_window(session, button)


def click_in_painting_window(session, button):
    offset = {"Cancel": 54, "Keep current": 160}[button]  # from the right edge, as laid out
    session.gui.do(f"w=$(xdotool search --onlyvisible --name '{PAINTING_WINDOW}' | head -1)\n"
                   "eval \"$(xdotool getwindowgeometry --shell $w)\"\n"
                   f"xdotool mousemove $((X + WIDTH - {offset})) $((Y + HEIGHT - 30)) click 1")


@pytest.mark.parametrize("button, status, results, layers", [
    ("Keep current", "success", [{"early": True}], ["Neural Style: starry_night", "in.png"]),
    ("Cancel", "cancel", [], ["in.png"])])
def test_the_painting_window_keeps_the_painting_so_far_or_cancels(
        session, server, files, button, status, results, layers):
    """A long run, stopped from the progress window once the canvas shows a preview: "Keep
    current" ends the job early with its image as the new layer; "Cancel" leaves the image as
    it was."""
    thread, outcome = gui_run(session, files, LONG_RUN)
    press_in_painting_window(session, button)
    thread.join(120)
    report = outcome["value"]
    assert report["status"] == status, report
    assert plugin_log(session, "result") == results
    assert [layer["name"] for layer in report["layers"]] == layers
    assert not server.client().info()["busy"]



def test_closing_the_image_mid_run_drops_the_job_quietly(gimp, server, files):
    """Filters > Artistic > Neural Style… from the menu on a fresh profile (the painting the
    user chose last time is remembered), OK; once the canvas shows the painting forming, the
    user closes the image. GIMP asks nothing (the preview is not an unsaved change), the server
    drops the job within a few seconds, and no error message appears, then or later."""
    session = GimpSession(gimp[1], gimp[0])
    try:
        session.install(server.endpoint)
        work = session.inside / "work"
        work.mkdir()
        photo("astronaut").resize((400, 330), Image.LANCZOS).save(work / "in.png")
        shutil.copy(files / "starry_night.png", work)
        (session.plugins.parent / "neural-style-last-style.txt").write_text(  # nst_dialog.STYLE_MEMORY
            session.path_in_gimp(work / "starry_night.png"))
        session.start_gui([session.path_in_gimp(work / "in.png")])
        session.gui.open_filter()
        wait_until(lambda: plugin_log(session, "preview"), 120, "a preview on the canvas")
        session.gui.close_image()
        wait_until(lambda: not server.client().info()["busy"], 5, "the server to drop the job")
        time.sleep(3)  # time for any late error message to show
        windows, cancelled = session.gui.windows(), plugin_log(session, "cancelled")
        stderr = session.stop()
    finally:
        session.close()
    assert cancelled == [{"by": "closing the image"}]
    assert not any(w.startswith("Close ") or "Message" in w for w in windows), windows
    # GIMP 3.2 under Xvfb may log GTK's own input-device assertions ("assertion '...' failed")
    # as the window closes (seen once, 2026-12-06); those are not the plug-in's
    ours = "\n".join(line for line in stderr.splitlines() if not GTK_ASSERTION.search(line))
    for trace in ("invalid ID", "Too many error messages", "failed", "Traceback"):
        assert trace not in ours, stderr[-3000:]


def test_cancel_in_the_dialog_keeps_the_chosen_style_file(gimp, server, files):
    """On a fresh GIMP profile the user's painting is in the dialog, and they press Cancel;
    opening the filter again offers the same painting (GIMP itself keeps a procedure's values
    only after a successful run: without the plug-in's memory there is no style file at all).
    With no second painting the Mix slider is greyed out; with the photo's colours kept, so is
    "Keep the photo's exposure" (the colours keep it). (A cancelled run's values are not kept:
    this profile is the test's own.)"""
    session = GimpSession(gimp[1], gimp[0])
    try:
        session.install(server.endpoint)
        (session.gui.folder / "cancel-dialog").touch()  # the runner cancels the first dialog only
        report, _ = run_filter(session, files / "photo.png",
                               dict(FAST, **{"style-file": str(files / "starry_night.png"),
                                             "preserve-colors": True}),
                               mode="INTERACTIVE", then=["INTERACTIVE"])
        dialogs = plugin_log(session, "dialog")
    finally:
        session.close()
    assert report["status"] == "cancel"
    assert [run["status"] for run in report["then"]] == ["success"], report
    assert report["layers"][0]["name"] == "Neural Style: starry_night"
    assert [d["mix_sensitive"] for d in dialogs] == [False, False], dialogs
    assert dialogs[0]["exposure_sensitive"] is False, dialogs


def test_ok_waits_for_a_painting(gimp, server, files):
    """On a fresh profile with no painting chosen, OK is greyed out: pressing it does nothing
    (no error box, the dialog stays) until the user chooses a painting or cancels."""
    session = GimpSession(gimp[1], gimp[0])
    try:
        session.install(server.endpoint)
        thread, outcome = in_background(lambda: run_filter(
            session, files / "photo.png", FAST, mode="INTERACTIVE")[0])
        wait_until(lambda: plugin_log(session, "dialog"), 120, "the dialog")
        time.sleep(3)  # the runner clicks OK every 0.3 s meanwhile
        (session.gui.folder / "cancel-dialog").touch()
        thread.join(60)
        report, dialog, windows = outcome["value"], plugin_log(session, "dialog"), session.gui.windows()
    finally:
        session.close()
    assert dialog[0]["ok_sensitive"] is False and dialog[0]["thumbnail"] is None, dialog
    assert report["status"] == "cancel", report
    assert len(report["layers"]) == 1 and not any("Message" in w for w in windows), windows


def test_the_painting_window_says_the_server_is_starting_and_cancel_works_then(gimp, files):
    """The first run after a restart: nothing answers, so the filter starts the server (10-30 s
    here); the progress window says so and its Cancel ends the run at once, the image untouched
    (the server goes on starting, ready for the next run)."""
    session, binds, pid_file = starting_session(gimp)
    try:
        session.plugin_log.unlink(missing_ok=True)
        args = dict(FAST, **{"style-file": str(files / "starry_night.png")})
        thread, outcome = in_background(lambda: run_filter(
            session, files / "photo.png", args, binds=binds, mode="INTERACTIVE")[0])
        wait_until(lambda: plugin_log(session, "starting"), 120, "the server's start")
        time.sleep(1)
        click_in_painting_window(session, "Cancel")
        pressed = time.monotonic()
        thread.join(120)
        took = time.monotonic() - pressed
        report, cancelled = outcome["value"], plugin_log(session, "cancelled")
        windows = session.gui.windows()
    finally:
        deadline = time.monotonic() + 90
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.5)  # the server started on: stop it
        if pid_file.exists():
            os.kill(json.loads(pid_file.read_text())["pid"], signal.SIGTERM)
        session.close()
    assert report["status"] == "cancel", report
    assert took < 10 and cancelled == [{"by": "the user"}], (took, cancelled)
    assert "Neural Style: painting" in windows and not any("Message" in w for w in windows), windows
    assert len(report["layers"]) == 1
