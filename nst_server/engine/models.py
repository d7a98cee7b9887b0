"""The VGG19 a Stylizer paints with: the float32 master loaded once onto the device, a variant
per dtype and memory layout built from it on first use, and images turned into its input."""
import copy

import torch
from PIL import Image

from .device import DeviceProfile, release_memory
from .images import to_tensor
from .vgg import PAINTING_PADDING, Padding, VGG19Features, load_vgg19, normalize


class Models:
    def __init__(self, weights: str, profile: DeviceProfile):
        self.weights = weights
        self.profile = profile
        self._vgg: VGG19Features | None = None
        self._variants: dict[tuple[torch.dtype, Padding], VGG19Features] = {}

    @property
    def vgg(self) -> VGG19Features:
        """The float32 master copy of the model, loaded on first use."""
        if self._vgg is None:
            self.load()
        assert self._vgg is not None
        return self._vgg

    @property
    def loaded(self) -> bool:
        return self._vgg is not None

    def load(self) -> None:
        """Load the weights onto the device (InputError if they cannot be used)."""
        self._vgg = load_vgg19(self.weights, padding=PAINTING_PADDING).to(self.profile.device).eval()

    def unload(self) -> None:
        """Free the model and its variants; the next use loads it again."""
        self._vgg = None
        self._variants.clear()
        release_memory(self.profile.device)

    def variant(self, dtype: torch.dtype, padding: Padding = PAINTING_PADDING) -> VGG19Features:
        """The VGG in `dtype`, `padding` and this device's memory layout (each variant built
        once)."""
        if (dtype, padding) not in self._variants:
            model = self.vgg
            if dtype != torch.float32 or self.profile.channels_last or padding != model.padding:
                model = copy.deepcopy(self.vgg).to(dtype)
                model.padding = padding
            if self.profile.channels_last:
                model = model.to(memory_format=torch.channels_last)
                model.channels_last = True
            self._variants[dtype, padding] = model
        return self._variants[dtype, padding]

    def input(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        """`image` resized to `size`, as the model's normalized input tensor on this device."""
        resized = image if image.size == tuple(size) else image.resize(size, Image.Resampling.LANCZOS)
        return normalize(to_tensor(resized).to(self.profile.device))
