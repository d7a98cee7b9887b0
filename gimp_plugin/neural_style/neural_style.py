#!/usr/bin/env python3
"""Neural Style for GIMP 3: Filters > Artistic > Neural Style...

A thin client: it reads the active layer's pixels and the chosen style file, sends them to the
local nst-server (which does the work), shows its progress and the painting as it forms (in a
temporary layer, outside the undo history), and inserts the result as a new layer above the
source, as one undo step. The image is only changed for good once a result has arrived.
"""
import json
import logging
import os
import subprocess
import sys
import time
import traceback

import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nst_canvas  # noqa: E402  (standard library and gi only, like everything in this folder)
import nst_dialog  # noqa: E402
import nst_watch  # noqa: E402
from nst_contract import client as nst_client  # noqa: E402
from nst_contract import launch as nst_launch  # noqa: E402
from nst_contract import protocol as nst_protocol  # noqa: E402
from nst_contract import settings as nst_settings  # noqa: E402
from nst_canvas import PluginError  # noqa: E402

PROCEDURE = "python-fu-neural-style"
CONFIG_FILE = os.path.join(HERE, "config.json")    # written by install.py
START_WAIT = nst_launch.START_TIMEOUT + 30  # above `nst-server start`'s own bound: its reason wins
PREVIEW_SECONDS = 1.5  # a new preview on the canvas this often: watchable, and cheap for the job
LOG_ENV = "NST_PLUGIN_LOG"  # a file: what the plug-in does, one line per step (tests, bug reports)
log = logging.getLogger("neural-style")


def start_log():
    path = os.environ.get(LOG_ENV)
    if path and not log.handlers:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def load_config():
    try:
        with open(CONFIG_FILE, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def installed_endpoint():
    return load_config().get("endpoint") or nst_client.default_endpoint()


def how_to_start(endpoint, config):
    return nst_launch.how_to_start(endpoint, config.get("server_command"), nst_launch.in_flatpak())


def server_reachable(client):
    """Whether our server answers (PluginError if something else listens there)."""
    try:
        client.ping()
        return True
    except nst_client.ServerUnavailable:
        return False
    except nst_client.NSTError as exc:  # something else answers there: starting ours won't help
        raise PluginError(f"Neural Style: {exc}") from None


def start_installed_server(client, config, watch):
    """Start the server install.py recorded (in the background) and wait until it answers at
    the client's endpoint, showing so and honouring Cancel (JobCancelled; the server goes on
    starting, ready for the next run); otherwise say how to start it, with what starting it said."""
    endpoint, command = client.endpoint, config.get("server_command")
    if not command or not os.path.exists(command[0]) or nst_launch.in_flatpak():
        raise PluginError(how_to_start(endpoint, config))
    watch.say("Starting the server… (the first time after a restart: up to a minute)")
    log.info("starting %s", json.dumps({"endpoint": endpoint}))
    try:
        starting = subprocess.Popen([*command, "start", "--endpoint", endpoint],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    **nst_launch.command_options(sys.platform))
    except OSError as exc:
        raise PluginError(f"{how_to_start(endpoint, config)}\n(starting it failed: {exc})") from None
    deadline = time.monotonic() + START_WAIT
    while starting.poll() is None and time.monotonic() < deadline:
        watch.pump()  # the window stays drawn and its Cancel works
        if watch.cancelled:
            raise nst_client.JobCancelled("cancelled while the server was starting")
        time.sleep(0.1)
    late = starting.poll() is None
    if late:
        starting.kill()
    out, err = starting.communicate()
    if not server_reachable(client):
        said = (f"no answer within {START_WAIT:.0f} s" if late else
                (err or out).strip() or f"exit status {starting.returncode}")
        raise PluginError(f"{how_to_start(endpoint, config)}\n(nst-server start said: {said})")


PAINTINGS = ("style-file", "style-file-2", "style-file-3", "style-file-4")  # the dialog's slots


def read_styles(config):
    """The chosen paintings' paths, their image files, their shares of the blend (the second
    painting, if chosen and the quality mixes two, gets `style-mix`) and their slots (0 for
    the painting, 1 for the second: regions map slots to paintings)."""
    regions = config.get_property("regions")
    slots = (4 if regions == "label-layer" else
             1 if regions == "none" and config.get_property("preset") ==
             nst_settings.ONE_PAINTING_PRESET else 2)
    chosen = [(slot, file.get_path()) for slot, file in
              enumerate(config.get_property(name) for name in PAINTINGS[:slots])
              if file is not None and file.get_path()]
    if not chosen or chosen[0][0] != 0:
        raise PluginError("Choose a painting for Neural Style.")
    paths = [path for _, path in chosen]
    mix = config.get_property("style-mix")
    shares = [1.0 - mix, mix] if len(paths) == 2 and regions == "none" else [1.0] * len(paths)
    return paths, [_read(path) for path in paths], shares, [slot for slot, _ in chosen]


def read_regions(config, image, source, slots):
    """The job's regions and label map (one byte per pixel of the layer), or (None, None). By
    the selection or a channel: its white part takes the painting, the rest the second painting
    if there is one, else keeps the photo. By a label layer: its commonest colours take the
    paintings in order; other colours, and colours without a painting, keep the photo."""
    kind = config.get_property("regions")
    if kind == "none":
        return None, None
    painting_of = {slot: index for index, slot in enumerate(slots)}
    if kind == "label-layer":
        layer = config.get_property("region-layer")
        if layer is None:
            raise PluginError("Regions by a label layer: choose the layer of flat colours.")
        labels, colours = nst_canvas.label_regions(layer, source, nst_dialog.LABEL_COLOURS)
        return [painting_of.get(slot) for slot in range(colours)] + [None], labels
    if kind == "selection":
        if Gimp.Selection.is_empty(image):
            raise PluginError("Regions inside and outside the selection: select the part to "
                              "paint first (or choose Regions: The whole layer).")
        mask = image.get_selection()
    else:
        mask = config.get_property("region-channel")
        if mask is None:
            raise PluginError("Regions by a channel: choose the channel to paint by.")
    labels = nst_canvas.region_labels(mask, source)
    if 0 not in labels:
        raise PluginError(f"Regions: the {kind} does not cover this layer: the painting would "
                          "have nowhere to go.")
    return [0, painting_of.get(1)], labels


def _read(path):
    """The painting file's bytes, if it is an image the server reads (PluginError otherwise)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise PluginError(f"Cannot read the painting {path}: {exc.strerror}") from None
    if nst_protocol.style_format(data[:12]) is None:
        raise PluginError(f"{os.path.basename(path)} is not an image Neural Style can use: choose "
                          f"a painting saved as {nst_protocol.formats_in_words()} ({path}).")
    return data


def paint(config, image, source, styles, shares, watch, regions=(None, None)):
    """Run the job on the server, with the live preview on the canvas if asked; return the
    result's pixels (JobCancelled once the user cancelled or the image went away). `regions`:
    read_regions's."""
    installed = load_config()
    endpoint = config.get_property("endpoint") or installed_endpoint()
    client = nst_client.Client(endpoint)
    if not server_reachable(client):
        start_installed_server(client, installed, watch)
    # Interactive runs only: in a script's run GIMP's progress Cancel kills the plug-in at once,
    # which would leave the preview layer behind.
    preview = (nst_canvas.PreviewLayer(image, source, masked=regions[0] is None)
               if isinstance(watch, nst_watch.JobWindow) and config.get_property("live-preview")
               else None)

    def on_event(event):
        watch.show(event)
        if preview is not None and event.kind is nst_client.JobEventKind.PREVIEW:
            preview.show(event.width, event.height, event.pixels)
            if log.isEnabledFor(logging.INFO) and nst_canvas.still_there(image, source):
                log.info("preview %s", json.dumps({
                    "shown": preview.shown, "fraction": event.fraction,
                    "layers": nst_canvas.layer_names(image), "layer": preview.layer.get_id(),
                    "masked": preview.layer.get_mask() is not None,
                    "selected": [layer.get_name() for layer in image.get_selected_layers()]}))
        elif event.kind is nst_client.JobEventKind.RESULT:
            log.info("result %s", json.dumps({"early": event.early}))

    def should_cancel():
        watch.pump()
        return watch.cancelled or not nst_canvas.still_there(image, source)

    width, height = source.get_width(), source.get_height()
    try:
        return client.stylize(
            nst_canvas.read_pixels(source), width, height, 4 if source.has_alpha() else 3,
            styles, nst_dialog.settings_from(config), on_event=on_event,
            style_weights=None if regions[0] else shares, regions=regions[0], labels=regions[1],
            should_cancel=should_cancel, should_finish=lambda: watch.finishing,
            preview_seconds=PREVIEW_SECONDS if preview else 0,
            preview_side=min(max(width, height), nst_protocol.MAX_PREVIEW_SIDE))
    finally:
        if preview is not None:
            preview.remove()


def stylize(config, image, drawables, interactive):
    """Paint the layer; False when the run was cancelled (by the user, or by closing the image)."""
    source = nst_canvas.check_drawable(image, drawables)
    paths, styles, shares, slots = read_styles(config)
    regions = read_regions(config, image, source, slots)
    watch = nst_watch.JobWindow() if interactive else nst_watch.GimpProgress()
    try:
        pixels = paint(config, image, source, styles, shares, watch, regions)
    except nst_client.JobCancelled:
        closed = not nst_canvas.still_there(image, source)
        log.info("cancelled %s", json.dumps({"by": "closing the image" if closed else "the user"}))
        return False
    except nst_client.ServerError as exc:
        raise PluginError(f"Neural Style: {exc.message}") from None
    except nst_client.NSTError as exc:
        raise PluginError(f"Neural Style: {exc}") from None
    finally:
        watch.close()
    names = [os.path.splitext(os.path.basename(path))[0]
             for path, share in zip(paths, shares) if share > 0]
    nst_canvas.insert_result(image, source, pixels, f"Neural Style: {' + '.join(names)}",
                             masked=regions[0] is None)
    return True


def run(procedure, run_mode, image, drawables, config, data):
    start_log()
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    if interactive and not nst_dialog.run_dialog(procedure, config, installed_endpoint()):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    if run_mode == Gimp.RunMode.WITH_LAST_VALS:
        nst_dialog.recall_style(config)
    started = time.monotonic()
    try:
        done = stylize(config, image, drawables, interactive)
    except PluginError as exc:
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc)))
    except Exception as exc:  # the user gets one line; the traceback goes to GIMP's stderr
        traceback.print_exc()
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(
            f"Neural Style failed unexpectedly after {time.monotonic() - started:.0f} s: "
            f"{type(exc).__name__}: {exc}"))
    status = Gimp.PDBStatusType.SUCCESS if done else Gimp.PDBStatusType.CANCEL
    return procedure.new_return_values(status, None)


class NeuralStyle(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("_Neural Style…")  # N: free among Artistic's filters
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Repaint the layer in the style of a painting",
            "Neural style transfer (Gatys et al.): the active layer is repainted in the style of "
            "the chosen image by the local Neural Style server, and the result is added as a new "
            "layer above it (masked by the selection, if any).", name)
        procedure.set_attribution("Neural Style for GIMP contributors",
                                  "Neural Style for GIMP contributors (MIT license)", "2026")
        nst_dialog.add_arguments(procedure)
        return procedure


Gimp.main(NeuralStyle.__gtype__, sys.argv)
