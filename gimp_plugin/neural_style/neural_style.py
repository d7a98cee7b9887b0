#!/usr/bin/env python3
"""Neural Style for GIMP 3: Filters > Artistic > Neural Style...

A thin client: it reads the active layer's pixels and the chosen style file, sends them to the
local nst-server (which does the work), shows its progress, and inserts the result as a new layer
above the source. The image is only touched once a result has arrived.
"""
import json
import os
import subprocess
import sys
import time

import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nst_client  # noqa: E402  (standard library only, like everything in this folder)
import nst_launch  # noqa: E402
import nst_settings  # noqa: E402

PROCEDURE = "python-fu-neural-style"
CONFIG_FILE = os.path.join(HERE, "config.json")    # written by install.py
START_WAIT = nst_launch.START_TIMEOUT + 30  # above `nst-server start`'s own bound: its reason wins
RW = GObject.ParamFlags.READWRITE


class PluginError(Exception):
    """A failure to report to the user as it is."""


def load_config():
    try:
        with open(CONFIG_FILE, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def how_to_start(endpoint, config):
    return nst_launch.how_to_start(endpoint, config.get("server_command"), nst_launch.in_flatpak())


def answers(client):
    try:
        client.ping()
        return True
    except nst_client.ServerUnavailable:
        return False
    except nst_client.NSTError as exc:  # something else answers there: starting ours won't help
        raise PluginError(f"Neural Style: {exc}") from None


def start_installed_server(client, config):
    """Start the server install.py recorded (in the background) and wait until it answers at
    the client's endpoint; otherwise say how to start it, with what starting it said."""
    endpoint, command = client.endpoint, config.get("server_command")
    if not command or not os.path.exists(command[0]) or nst_launch.in_flatpak():
        raise PluginError(how_to_start(endpoint, config))
    Gimp.progress_set_text("Neural Style: starting the server…")
    try:
        done = subprocess.run([*command, "start", "--endpoint", endpoint], timeout=START_WAIT,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              **nst_launch.command_options(sys.platform))
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginError(f"{how_to_start(endpoint, config)}\n(starting it failed: {exc})") from None
    if not answers(client):
        said = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise PluginError(f"{how_to_start(endpoint, config)}\n(nst-server start said: {said})")


def check_drawable(image, drawables):
    if len(drawables) != 1:
        raise PluginError("Select exactly one layer for Neural Style.")
    layer = drawables[0]
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PluginError("Neural Style works on RGB and grayscale images; this one is indexed. "
                          "Use Image > Mode > RGB first.")
    if not isinstance(layer, Gimp.Layer) or isinstance(layer, Gimp.LayerMask):
        raise PluginError("Neural Style works on a layer: select a layer, not a mask or channel.")
    if layer.is_group():
        raise PluginError("Neural Style cannot paint a layer group: select one of its layers.")
    return layer


def read_style(config):
    style_file = config.get_property("style-file")
    if style_file is None or style_file.get_path() is None:
        raise PluginError("Choose a style image (a painting) for Neural Style.")
    path = style_file.get_path()
    try:
        with open(path, "rb") as f:
            return path, f.read()
    except OSError as exc:
        raise PluginError(f"Cannot read the style image {path}: {exc.strerror}") from None


def settings_from(config):
    size = config.get_property("size")
    return {"preset": config.get_property("preset"), "strength": config.get_property("strength"),
            "size": size or None, "resolution": config.get_property("resolution"),
            "preserve_colors": config.get_property("preserve-colors"),
            "seed": config.get_property("seed")}


def show_progress(event):
    kind = event.kind.value
    if kind == "progress":
        Gimp.progress_set_text(f"Neural Style: {time_left(event.remaining)}")
        Gimp.progress_update(event.fraction)
    elif kind in ("accepted", "queued") and event.position > 0:
        Gimp.progress_set_text(f"Neural Style: waiting ({event.position} job(s) ahead)")


def time_left(seconds):
    """Plain words for an estimate: "about 3 min left", "less than a minute left"."""
    if seconds >= 90:
        return f"about {round(seconds / 60)} min left"
    return "less than a minute left" if seconds >= 20 else "almost done"


def insert_result(image, source, pixels, pixel_format, name):
    """The result as a new layer right above `source`: same size, offsets and type; masked by the
    selection if there is one. One undo step."""
    width, height = source.get_width(), source.get_height()
    image.undo_group_start()
    try:
        layer = Gimp.Layer.new(image, name, width, height, source.type(), 100.0,
                               Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        _, x, y = source.get_offsets()
        layer.set_offsets(x, y)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, width, height), pixel_format, pixels)
        buffer.flush()
        layer.update(0, 0, width, height)
        if not Gimp.Selection.is_empty(image):
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layer


def stylize(procedure, config, image, drawables):
    source = check_drawable(image, drawables)
    style_path, style_bytes = read_style(config)
    installed = load_config()
    endpoint = config.get_property("endpoint") or installed.get("endpoint") or \
        nst_client.default_endpoint()
    Gimp.progress_init("Neural Style")
    client = nst_client.Client(endpoint)
    if not answers(client):
        start_installed_server(client, installed)
    channels = 4 if source.has_alpha() else 3
    pixel_format = "R'G'B'A u8" if channels == 4 else "R'G'B' u8"  # sRGB-encoded, as VGG expects
    width, height = source.get_width(), source.get_height()
    pixels = source.get_buffer().get(Gegl.Rectangle.new(0, 0, width, height), 1.0, pixel_format,
                                     Gegl.AbyssPolicy.CLAMP)
    try:
        result = client.stylize(pixels, width, height, channels, style_bytes,
                                settings_from(config), on_event=show_progress)
    except nst_client.ServerError as exc:
        raise PluginError(f"Neural Style: {exc.message}") from None
    except nst_client.NSTError as exc:
        raise PluginError(f"Neural Style: {exc}") from None
    style_name = os.path.splitext(os.path.basename(style_path))[0]
    insert_result(image, source, result, pixel_format, f"Neural Style: {style_name}")
    Gimp.progress_end()


def run(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi
        GimpUi.init(PROCEDURE)
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Style")
        dialog.fill(None)
        accepted = dialog.run()
        dialog.destroy()
        if not accepted:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    started = time.monotonic()
    try:
        stylize(procedure, config, image, drawables)
    except PluginError as exc:
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc)))
    except Exception as exc:  # never a bare traceback: say what failed
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(
            f"Neural Style failed unexpectedly after {time.monotonic() - started:.0f} s: "
            f"{type(exc).__name__}: {exc}"))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


RESOLUTION_LABELS = ("Automatic", "Full size (slow without a GPU)")


def add_arguments(procedure):
    """The public scripting API: argument names are stable (docs: README)."""
    knobs = nst_settings.KNOBS
    procedure.add_file_argument("style-file", "St_yle image", "The painting whose style to use "
                                "(PNG, JPEG, WebP, TIFF)", Gimp.FileChooserAction.OPEN, False,
                                None, RW)
    presets = Gimp.Choice.new()
    for index, name in enumerate(nst_settings.PRESETS):
        presets.add(name, index, name.capitalize(), "")
    procedure.add_choice_argument("preset", "_Preset", knobs["preset"].help, presets,
                                  nst_settings.DEFAULT_PRESET, RW)
    strength = knobs["strength"]
    procedure.add_double_argument("strength", "Style stre_ngth", strength.help, strength.low,
                                  strength.high, strength.default, RW)
    size = knobs["size"]
    procedure.add_int_argument("size", "_Working size (0 = automatic)", size.help, 0, size.high,
                               0, RW)
    resolutions = Gimp.Choice.new()
    for index, (name, label) in enumerate(zip(nst_settings.RESOLUTIONS, RESOLUTION_LABELS)):
        resolutions.add(name, index, label, "")
    procedure.add_choice_argument("resolution", "_Resolution", knobs["resolution"].help,
                                  resolutions, knobs["resolution"].default, RW)
    preserve = knobs["preserve_colors"]
    procedure.add_boolean_argument("preserve-colors", "Keep original _colors", preserve.help,
                                   preserve.default, RW)
    seed = knobs["seed"]
    procedure.add_int_argument("seed", "Ran_dom seed", seed.help, seed.low, seed.high,
                               seed.default, RW)
    procedure.add_string_argument("endpoint", "Server _endpoint (advanced)",
                                  "ZeroMQ endpoint of nst-server; empty: the installed setting",
                                  "", RW)


class NeuralStyle(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Neural Style…")
        procedure.add_menu_path("<Image>/Filters/Artistic")
        procedure.set_documentation(
            "Repaint the layer in the style of a painting",
            "Neural style transfer (Gatys et al.): the active layer is repainted in the style of "
            "the chosen image by the local Neural Style server, and the result is added as a new "
            "layer above it (masked by the selection, if any).", name)
        procedure.set_attribution("Neural Style for GIMP", "MIT", "2026")
        add_arguments(procedure)
        return procedure


Gimp.main(NeuralStyle.__gtype__, sys.argv)
