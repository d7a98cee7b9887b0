"""The procedure's arguments (its public scripting API: names are stable, see README) and the
dialog artists see: the main knobs first, the rest under "Advanced". Labels carry unique
mnemonics (GIMP logs a duplicate: its own buttons take H, R, C, O, S and L)."""
import json
import logging
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GObject  # noqa: E402

from nst_contract import settings as nst_settings  # noqa: E402

RW = GObject.ParamFlags.READWRITE
MAIN = ["style-file", "style-file-2", "style-mix", "preset", "strength", "style-scale",
        "preserve-colors", "preserve-exposure", "full-size"]
REGION_KNOBS = ["regions", "region-channel", "region-layer", "style-file-3", "style-file-4"]
LABEL_COLOURS = 4  # a label layer's commonest colours, one painting each
# Where each painting goes (the `regions` choice): its name, label and tip.
REGIONS = (("none", "The whole layer", "The painting (or the mix of the two) over the whole "
            "layer; a selection masks the result"),
           ("selection", "Inside and outside the selection", "The painting inside the "
            "selection, the second painting outside it (without one, the photo stays there)"),
           ("channel", "By a channel", "The painting where the channel below is white, the "
            "second painting elsewhere (without one, the photo stays there)"),
           ("label-layer", "By a label layer's colours", "Each flat colour of the layer below "
            "takes a painting: its commonest colour the painting, the next ones the second, "
            "third and fourth; any other colour, or one without a painting, keeps the photo"))
ADVANCED = ["live-preview", "custom-size", "size", "seed", "endpoint"]
STYLE_MEMORY = "neural-style-last-style.txt"  # in GIMP's user folder: see remember_style
log = logging.getLogger("neural-style")


def add_arguments(procedure: Gimp.Procedure) -> None:
    knobs = nst_settings.KNOBS
    procedure.add_file_argument("style-file", "_Painting", "The painting whose look to give "
                                "the layer (PNG, JPEG, WebP, TIFF, BMP, GIF)",
                                Gimp.FileChooserAction.OPEN, False, None, RW)
    procedure.add_file_argument("style-file-2", "Second pain_ting (optional)", "A second "
                                "painting to blend with the first", Gimp.FileChooserAction.OPEN,
                                True, None, RW)
    procedure.add_double_argument("style-mix", "M_ix", "How much of the second painting: 0 "
                                  "none, 0.5 half and half, 1 only the second", 0.0, 1.0, 0.5, RW)
    procedure.add_choice_argument("regions", "_Divide the layer", "Where each painting goes",
                                  _choice(REGIONS), "none", RW)
    procedure.add_channel_argument("region-channel", "Channel to paint b_y", "With Regions "
                                   "by a channel: white is the painting's part", True, RW)
    procedure.add_layer_argument("region-layer", "Colo_ur layer", "With Regions by a label "
                                 "layer: a layer of flat colours, one per region", True, RW)
    for number, label in ((3, "Painting _3"), (4, "Painting _4")):
        procedure.add_file_argument(f"style-file-{number}", label, "With Regions by a label "
                                    "layer: the painting of its next commonest colour",
                                    Gimp.FileChooserAction.OPEN, True, None, RW)
    procedure.add_choice_argument("preset", "_Quality", "How finished the painting is, against "
                                  "how long it takes", _presets(),
                                  nst_settings.DEFAULT_PRESET, RW)
    strength = knobs["strength"]
    procedure.add_double_argument("strength", "Style stre_ngth", strength.help, strength.low,
                                  strength.high, strength.default, RW)
    scale = knobs["style_scale"]
    procedure.add_double_argument("style-scale", "_Brush size", "How big the painting's strokes "
                                  "are on the layer: 1 as in the painting, 2 twice as big, 0.5 "
                                  "half", scale.low, scale.high, scale.default, RW)
    preserve = knobs["preserve_colors"]
    procedure.add_boolean_argument("preserve-colors", "_Keep the photo's colors", preserve.help,
                                   preserve.default, RW)
    procedure.add_boolean_argument("full-size", "Work at the layer's _full size", "On: the "
                                   "painting is made at the layer's own size, whatever the computer "
                                   "(slow without a graphics card). Off: as much detail as this "
                                   "computer gives in reasonable time (with a graphics card, full "
                                   "size); the whole layer is painted either way", False, RW)
    procedure.add_boolean_argument("live-preview", "Show the painting as it for_ms",
                                   "Show the painting so far on the canvas while it is made, in "
                                   "a temporary layer", True, RW)
    size = knobs["size"]
    procedure.add_boolean_argument("custom-size", "Choose the _working size",
                                   "Off: the size is chosen for this computer", False, RW)
    procedure.add_int_argument("size", "Working si_ze", size.help, size.low, size.high, 512, RW)
    seed = knobs["seed"]
    procedure.add_int_argument("seed", "Random s_eed", seed.help, seed.low, seed.high,
                               seed.default, RW)
    procedure.add_string_argument("endpoint", "Ser_ver address", "Leave empty for the server "
                                  "the installer set up; tcp://HOST:PORT for another one", "", RW)
    # Newer arguments go last, so that scripts passing the others by position keep working (the
    # dialog's order is MAIN's)
    exposure = knobs["preserve_exposure"]
    procedure.add_boolean_argument("preserve-exposure", "Keep the photo's e_xposure",
                                   exposure.help, exposure.default, RW)


def _presets():
    return _choice([(name, *nst_settings.PRESET_LABELS[name]) for name in nst_settings.PRESETS])


def _choice(entries):
    choice = Gimp.Choice.new()
    for index, (name, label, tip) in enumerate(entries):
        choice.add(name, index, label, tip)
    return choice


def settings_from(config: Gimp.ProcedureConfig) -> dict:
    """The arguments as the server's settings (nst_settings.KNOBS names)."""
    size = config.get_property("size") if config.get_property("custom-size") else None
    return {"preset": config.get_property("preset"), "strength": config.get_property("strength"),
            "style_scale": config.get_property("style-scale"),
            "size": size, "resolution": "full" if config.get_property("full-size") else "auto",
            "preserve_colors": config.get_property("preserve-colors"),
            "preserve_exposure": config.get_property("preserve-exposure"),
            "seed": config.get_property("seed")}


def run_dialog(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, installed_endpoint: str) -> bool:
    """Show the dialog; True once the user pressed OK (which waits for a painting). The chosen
    painting is remembered even on Cancel (GIMP keeps a procedure's values only after a
    successful run). `installed_endpoint`: the server address an empty Server address means."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi, Gtk
    GimpUi.init(procedure.get_name())
    recall_style(config, over_gimps=True)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Neural Style")
    dialog.get_label("advanced-label", "_Advanced", False, True)
    dialog.fill_box("advanced-box", ADVANCED)
    dialog.fill_expander("advanced", "advanced-label", False, "advanced-box")
    dialog.get_label("regions-label", "Re_gions: a painting per part", False, True)
    dialog.fill_box("regions-box", REGION_KNOBS)
    dialog.fill_expander("regions-expander", "regions-label", False, "regions-box")
    dialog.set_sensitive("size", True, config, "custom-size", False)
    dialog.set_sensitive("preserve-exposure", True, config, "preserve-colors", True)
    first, second = (dialog.get_widget(name, GimpUi.FileChooser.__gtype__)
                     for name in ("style-file", "style-file-2"))
    mix = dialog.get_widget("style-mix", GObject.TYPE_NONE)
    channel = dialog.get_widget("region-channel", GObject.TYPE_NONE)
    by_layer = [dialog.get_widget(name, GObject.TYPE_NONE)
                for name in ("region-layer", "style-file-3", "style-file-4")]
    filtered = all([_images_only(first), _images_only(second)])
    thumbnail = _thumbnail_beside(first)
    _descendant(dialog.get_widget("endpoint", GObject.TYPE_NONE), Gtk.Entry).set_placeholder_text(
        f"empty: {installed_endpoint}")

    def follow_paintings():
        painting = config.get_property("style-file")
        dialog.set_response_sensitive(Gtk.ResponseType.OK, painting is not None)
        _show_thumbnail(thumbnail, painting)
        one_only = config.get_property("preset") == nst_settings.ONE_PAINTING_PRESET
        regions = config.get_property("regions")
        second.set_sensitive(not one_only)
        mix.set_sensitive(not one_only and regions == "none" and
                          config.get_property("style-file-2") is not None)
        channel.set_sensitive(regions == "channel")
        for widget in by_layer:
            widget.set_sensitive(regions == "label-layer")

    following = [config.connect(f"notify::{name}", lambda *_: follow_paintings())
                 for name in ("style-file", "style-file-2", "preset", "regions")]
    dialog.fill(MAIN + ["regions-expander", "advanced"])
    follow_paintings()
    if log.isEnabledFor(logging.INFO):
        log.info("dialog %s", json.dumps(dict(
            _layout(dialog), images_only=filtered, mix_sensitive=mix.get_sensitive(),
            ok_sensitive=config.get_property("style-file") is not None,
            thumbnail=_size_of(thumbnail), second_sensitive=second.get_sensitive(),
            channel_sensitive=channel.get_sensitive(),
            exposure_sensitive=dialog.get_widget("preserve-exposure",
                                                 GObject.TYPE_NONE).get_sensitive(),
            label_layer_sensitive=by_layer[0].get_sensitive())))
    accepted = dialog.run()
    for handler in following:  # the widgets go with the dialog; the config stays
        config.disconnect(handler)
    dialog.destroy()
    remember_style(config)
    return accepted


THUMBNAIL_SIDE = 48  # px: the chosen painting beside its chooser, about two rows of the dialog


def _thumbnail_beside(chooser):
    """An image at the end of the chooser's row (a GimpFileChooser is a box), for the painting."""
    from gi.repository import Gtk
    thumbnail = Gtk.Image()
    if isinstance(chooser, Gtk.Box):
        chooser.pack_end(thumbnail, False, False, 0)
        thumbnail.show()
    return thumbnail


def _show_thumbnail(thumbnail, painting):
    from gi.repository import GdkPixbuf
    try:
        thumbnail.set_from_pixbuf(GdkPixbuf.Pixbuf.new_from_file_at_size(
            painting.get_path(), THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    except Exception:  # no painting, or not an image: no thumbnail
        thumbnail.clear()


def _size_of(thumbnail):
    pixbuf = thumbnail.get_pixbuf() if thumbnail.get_parent() is not None else None
    return [pixbuf.get_width(), pixbuf.get_height()] if pixbuf is not None else None


def _layout(dialog):
    """The dialog's labels in order, and its expanders' titles (for the log)."""
    from gi.repository import Gtk
    labels, expanders, todo = [], [], [dialog.get_content_area()]
    while todo:
        widget = todo.pop(0)
        if isinstance(widget, Gtk.Expander):
            expanders.append(widget.get_label_widget().get_label())
        elif isinstance(widget, Gtk.Label):
            labels.append(widget.get_label())
        if isinstance(widget, Gtk.Container):
            todo[:0] = widget.get_children()
    return {"labels": labels, "expanders": expanders}


def _descendant(widget, kind):
    """The first widget of class `kind` in `widget`'s tree (itself included), or None."""
    from gi.repository import Gtk
    todo = [widget]
    while todo:
        widget = todo.pop(0)
        if isinstance(widget, kind):
            return widget
        todo.extend(widget.get_children() if isinstance(widget, Gtk.Container) else [])
    return None


def _images_only(chooser):
    """Filter the style chooser to images and give it a thumbnail preview, where the widget GIMP
    made holds a GTK file chooser (it does for OPEN; nothing is lost otherwise). True if so."""
    from gi.repository import GdkPixbuf, Gtk
    button = _descendant(chooser, Gtk.FileChooser)
    if button is None:
        return False
    images = Gtk.FileFilter()
    images.set_name("Images")
    images.add_pixbuf_formats()
    button.add_filter(images)
    button.set_filter(images)
    preview = Gtk.Image()
    button.set_preview_widget(preview)

    def update(_chooser):
        path = button.get_preview_filename()
        try:
            preview.set_from_pixbuf(GdkPixbuf.Pixbuf.new_from_file_at_size(path, 160, 160))
            button.set_preview_widget_active(True)
        except Exception:  # not an image (or a folder): no thumbnail
            button.set_preview_widget_active(False)

    button.connect("update-preview", update)
    return True


def _memory_path():
    return os.path.join(Gimp.directory(), STYLE_MEMORY)


def remember_style(config: Gimp.ProcedureConfig) -> None:
    style = config.get_property("style-file")
    if style is not None and style.get_path():
        try:
            with open(_memory_path(), "w", encoding="utf-8") as f:
                f.write(style.get_path())
        except OSError:
            pass  # only a convenience


def recall_style(config: Gimp.ProcedureConfig, over_gimps: bool = False) -> None:
    """Offer the style file last chosen in the dialog: in the dialog, over GIMP's own last
    values (those of the last successful run, older than a pick the user then cancelled);
    otherwise only when GIMP has none."""
    if config.get_property("style-file") is not None and not over_gimps:
        return
    try:
        with open(_memory_path(), encoding="utf-8") as f:
            path = f.read().strip()
    except OSError:
        return
    if os.path.isfile(path):
        from gi.repository import Gio
        config.set_property("style-file", Gio.File.new_for_path(path))
