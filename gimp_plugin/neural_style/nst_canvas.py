"""What the plug-in does to the image: which layer it paints, the live preview layer while the
server works, and the result layer. Needs GIMP's `gi`; the image is only changed for good once a
result has arrived."""
from collections import Counter

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

PREVIEW_NAME = "Neural Style (preview)"


class PluginError(Exception):
    """A failure to report to the user as it is."""


def check_drawable(image: Gimp.Image, drawables: list) -> Gimp.Layer:
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


def pixel_format(layer: Gimp.Layer) -> str:
    """sRGB-encoded 8-bit RGB(A), as VGG expects, whatever the image's precision."""
    return "R'G'B'A u8" if layer.has_alpha() else "R'G'B' u8"


def read_pixels(layer: Gimp.Layer) -> bytes:
    rect = Gegl.Rectangle.new(0, 0, layer.get_width(), layer.get_height())
    return layer.get_buffer().get(rect, 1.0, pixel_format(layer), Gegl.AbyssPolicy.CLAMP)


# A channel's value (Y u8) -> the region it puts a pixel in: white half 0 (the painting), the
# rest 1 (the second painting, or kept).
TO_LABEL = bytes(0 if value >= 128 else 1 for value in range(256))


def region_labels(mask: Gimp.Drawable, source: Gimp.Layer) -> bytes:
    """The label map of `mask` (the selection or a channel, image-sized) over the layer: one
    byte per pixel, 0 where the mask is at least half white, else 1."""
    _, x, y = source.get_offsets()
    rect = Gegl.Rectangle.new(x, y, source.get_width(), source.get_height())
    return mask.get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE).translate(TO_LABEL)


def label_regions(labels: Gimp.Drawable, source: Gimp.Layer, most: int) -> tuple[bytes, int]:
    """The label map over `source` of a layer of flat colours: its commonest colours (up to
    `most`, each on at least MIN_LABEL_SHARE of it), commonest first, are regions 0, 1, ...;
    every other pixel is the region after them. With the number of colours found."""
    _, source_x, source_y = source.get_offsets()
    _, x, y = labels.get_offsets()
    width, height = source.get_width(), source.get_height()
    rect = Gegl.Rectangle.new(source_x - x, source_y - y, width, height)
    rgb = labels.get_buffer().get(rect, 1.0, "R'G'B' u8", Gegl.AbyssPolicy.NONE)
    colours = _commonest_colours(rgb, most)
    planes = [rgb[channel::3] for channel in range(3)]
    # big integers, a byte per pixel: whole-layer arithmetic in C, not a Python loop per pixel
    found = int.from_bytes(bytes([len(colours)]) * (width * height), "big")
    for region, colour in enumerate(colours):
        match = -1
        for plane, value in zip(planes, colour):
            match &= int.from_bytes(plane.translate(_equals(value)), "big")
        found -= (len(colours) - region) * match
    return found.to_bytes(width * height, "big"), len(colours)


MIN_LABEL_SHARE = 0.01  # a colour on less of the label layer is an edge's blend, not a region
LABEL_SAMPLES = 65536   # pixels looked at to find the colours


def _commonest_colours(rgb: bytes, most: int) -> list[bytes]:
    pixels = len(rgb) // 3
    step = max(1, pixels // LABEL_SAMPLES)
    counts = Counter(rgb[i * 3:i * 3 + 3] for i in range(0, pixels, step))
    seen = sum(counts.values())
    return [colour for colour, count in counts.most_common(most) if count >= MIN_LABEL_SHARE * seen]


def _equals(value: int) -> bytes:
    """A bytes.translate table: 1 for `value`, 0 for every other byte."""
    return bytes(1 if byte == value else 0 for byte in range(256))


def still_there(image: Gimp.Image, source: Gimp.Layer) -> bool:
    """False once the user closed the image or deleted the layer while the server worked."""
    return image.is_valid() and source.is_valid()


def layer_names(image: Gimp.Image) -> list[str]:
    return [layer.get_name() for layer in image.get_layers()]


def _new_layer(image, source, name, width, height, layer_type, pixels, pixels_format):
    """A layer filled with `pixels`, inserted right above `source`."""
    layer = Gimp.Layer.new(image, name, width, height, layer_type, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), pixels_format, pixels)
    buffer.flush()
    return layer


class PreviewLayer:
    """The job's current image in one temporary layer above the source, scaled over it and masked
    by the selection as the result will be. Kept out of the undo history (the undo stack is frozen
    around each change) and out of the image's unsaved-changes state (an unchanged image stays
    clean: closing it asks nothing); the user's selected layers stay selected (what they paint
    meanwhile is theirs); removed at the end whatever happened, so that it leaves no trace."""

    def __init__(self, image: Gimp.Image, source: Gimp.Layer, masked: bool = True):
        self.image, self.source, self.masked = image, source, masked
        self.layer: Gimp.Layer | None = None
        self.shown = 0

    def show(self, width: int, height: int, pixels: bytes) -> None:
        if not still_there(self.image, self.source):
            return
        clean = not self.image.is_dirty()
        self.image.undo_freeze()
        try:
            if self.layer is None or not self.layer.is_valid():
                self.layer = self._make()
            _scale_into(self.layer, width, height, pixels)
        finally:
            self._thaw(clean)
        self.shown += 1
        Gimp.displays_flush()

    def remove(self) -> None:
        if self.layer is None or not self.image.is_valid():
            return
        clean = not self.image.is_dirty()
        self.image.undo_freeze()
        try:
            if self.layer.is_valid():
                self.image.remove_layer(self.layer)
            self.layer = None
        finally:
            self._thaw(clean)
        Gimp.displays_flush()

    def _make(self) -> Gimp.Layer:
        """The preview layer, over the source and masked like the result; the layers the user
        had selected are selected again (inserting a layer selects it)."""
        chosen = self.image.get_selected_layers()
        gray = self.image.get_base_type() == Gimp.ImageBaseType.GRAY
        layer = Gimp.Layer.new(self.image, PREVIEW_NAME, self.source.get_width(),
                               self.source.get_height(),
                               Gimp.ImageType.GRAY_IMAGE if gray else Gimp.ImageType.RGB_IMAGE,
                               100.0, Gimp.LayerMode.NORMAL)
        self.image.insert_layer(layer, self.source.get_parent(),
                                self.image.get_item_position(self.source))
        layer.set_offsets(*self.source.get_offsets()[1:])
        if self.masked:
            _mask_by_selection(self.image, layer)
        self.image.set_selected_layers(chosen)
        return layer

    def _thaw(self, clean):
        self.image.undo_thaw()
        if clean:  # it was clean just before this change, which is not the user's work
            self.image.clean_all()


def _scale_into(layer: Gimp.Layer, width: int, height: int, pixels: bytes) -> None:
    """RGB `pixels` of width x height, scaled (linear: it is a preview) over the whole layer."""
    small = Gegl.Buffer.new("R'G'B' u8", 0, 0, width, height)
    small.set(Gegl.Rectangle.new(0, 0, width, height), "R'G'B' u8", pixels)
    graph = Gegl.Node()
    source = graph.create_child("gegl:buffer-source")
    source.set_property("buffer", small)
    scale = graph.create_child("gegl:scale-size")
    scale.set_property("x", float(layer.get_width()))
    scale.set_property("y", float(layer.get_height()))
    scale.set_property("sampler", Gegl.SamplerType.LINEAR)
    write = graph.create_child("gegl:write-buffer")
    buffer = layer.get_buffer()
    write.set_property("buffer", buffer)
    source.link(scale)
    scale.link(write)
    write.process()
    buffer.flush()
    layer.update(0, 0, layer.get_width(), layer.get_height())


def _mask_by_selection(image: Gimp.Image, layer: Gimp.Layer) -> None:
    """Mask `layer` by the selection, if there is one, leaving the layer (not its mask) active."""
    if not Gimp.Selection.is_empty(image):
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
        layer.set_edit_mask(False)


def insert_result(image: Gimp.Image, source: Gimp.Layer, pixels: bytes, name: str,
                  masked: bool = True) -> Gimp.Layer:
    """The result as a new layer right above `source`, selected: same size, offsets and type;
    if `masked`, masked by the selection if there is one. One undo step."""
    image.undo_group_start()
    try:
        layer = _new_layer(image, source, name, source.get_width(), source.get_height(),
                           source.type(), pixels, pixel_format(source))
        layer.set_offsets(*source.get_offsets()[1:])
        layer.update(0, 0, source.get_width(), source.get_height())
        if masked:
            _mask_by_selection(image, layer)
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layer
