"""What the plug-in does to the image: which layer it paints, the live preview layer while the
server works, and the result layer. Needs GIMP's `gi`; the image is only changed for good once a
result has arrived."""
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
    """The job's current image in a temporary layer above the source, scaled over it. Kept out of
    the undo history (the undo stack is frozen around each change) and out of the image's
    unsaved-changes state (an unchanged image stays clean: closing it asks nothing), and removed
    at the end whatever happened, so that it leaves no trace."""

    def __init__(self, image: Gimp.Image, source: Gimp.Layer):
        self.image, self.source = image, source
        self.layer: Gimp.Layer | None = None
        self.shown = 0

    def show(self, width: int, height: int, pixels: bytes) -> None:
        if not still_there(self.image, self.source):
            return
        gray = self.image.get_base_type() == Gimp.ImageBaseType.GRAY
        layer_type = Gimp.ImageType.GRAY_IMAGE if gray else Gimp.ImageType.RGB_IMAGE
        clean = not self.image.is_dirty()
        self.image.undo_freeze()
        Gimp.context_push()
        try:
            layer = _new_layer(self.image, self.source, PREVIEW_NAME, width, height, layer_type,
                               pixels, "R'G'B' u8")
            Gimp.context_set_interpolation(Gimp.InterpolationType.LINEAR)  # fast: it is a preview
            layer.scale(self.source.get_width(), self.source.get_height(), False)
            layer.set_offsets(*self.source.get_offsets()[1:])
            self._drop()  # after the new one is up: the canvas never flickers to the photo
            layer.set_name(PREVIEW_NAME)  # GIMP numbered it while the old one was there
            self.layer = layer
        finally:
            Gimp.context_pop()
            self._thaw(clean)
        self.shown += 1
        Gimp.displays_flush()

    def remove(self) -> None:
        if self.layer is None or not self.image.is_valid():
            return
        clean = not self.image.is_dirty()
        self.image.undo_freeze()
        try:
            self._drop()
        finally:
            self._thaw(clean)
        Gimp.displays_flush()

    def _thaw(self, clean):
        self.image.undo_thaw()
        if clean:  # it was clean just before this change, which is not the user's work
            self.image.clean_all()

    def _drop(self):
        if self.layer is not None and self.layer.is_valid():
            self.image.remove_layer(self.layer)
        self.layer = None


def insert_result(image: Gimp.Image, source: Gimp.Layer, pixels: bytes, name: str) -> Gimp.Layer:
    """The result as a new layer right above `source`: same size, offsets and type; masked by the
    selection if there is one. One undo step."""
    image.undo_group_start()
    try:
        layer = _new_layer(image, source, name, source.get_width(), source.get_height(),
                           source.type(), pixels, pixel_format(source))
        layer.set_offsets(*source.get_offsets()[1:])
        layer.update(0, 0, source.get_width(), source.get_height())
        if not Gimp.Selection.is_empty(image):
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layer
