"""The user-facing knobs of a stylization: names, defaults, ranges, help.

One table shared by the command line (`nst-stylize`), the wire protocol, the server's validation
and the GIMP plug-in's arguments. Pure Python (no torch, numpy or GIMP): GIMP's own Python imports
it. A value of None means "the preset decides" (the preset values live in nst_server/engine/presets.py).
"""

import math

PRESETS = ("fast", "balanced", "best", "painterly", "paper")
DEFAULT_PRESET = "balanced"
ONE_PAINTING_PRESET = "painterly"  # matches one painting's features: a second is not mixed in
# What each preset is called where artists choose it (the GIMP dialog), with its one-line tip.
PRESET_LABELS = {
    "fast": ("Quick look", "A rough first impression, to try a painting on this photo"),
    "balanced": ("Balanced", "A finished painting in reasonable time: the usual choice"),
    "best": ("High quality", "Richer, more settled brushwork; takes about three times as long"),
    "painterly": ("Painterly", "Each part of the photo painted with the painting's own most alike "
                  "strokes, whole (neural neighbours, Kolkin 2022); one painting"),
    "paper": ("Published recipe (Gatys 2016)", "The settings of the original research paper, "
              "for comparison; slow and small"),
}
INITS = ("content", "noise")
RESOLUTIONS = ("auto", "full")
SEED_MAX = 2**31 - 1


class Knob:
    """One setting: its type, default, allowed range or choices, and a one-line help text."""

    def __init__(self, name, kind, default, help, low=None, high=None, choices=None):
        self.name, self.kind, self.default, self.help = name, kind, default, help
        self.low, self.high, self.choices = low, high, choices

    @property
    def option(self):
        """The command-line spelling: `content_weight` -> `--content-weight`."""
        return "--" + self.name.replace("_", "-")

    def check(self, value):
        """Return `value` converted to this knob's type, or raise ValueError saying why not."""
        if value is None and self.default is None:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, got {value!r}"[:200])
            return value
        if self.kind is str:
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}; "
                                 f"got {value!r}"[:200])
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.name} must be a number, got {value!r}"[:200])
        if not math.isfinite(value):
            raise ValueError(f"{self.name} must be a finite number, got {value!r}")
        if self.kind is int and value != int(value):
            raise ValueError(f"{self.name} must be a whole number, got {value!r}")
        value = self.kind(value)
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.name} must be between {self.low} and {self.high}, got {value}")
        return value


KNOBS = {k.name: k for k in (
    Knob("preset", str, DEFAULT_PRESET, "how finished the painting is, against how long it "
         "takes: fast, balanced, best; painterly (the painting's own strokes by neural "
         "neighbours, one painting); or paper (the published recipe)", choices=PRESETS),
    Knob("size", int, None, "the size in pixels (longest side) the painting is worked out at; "
         "set, it is also the finest size unless resolution is full, and the result is scaled "
         "to the layer's size. Default: chosen for the computer",
         low=64, high=4096),
    Knob("iterations", int, None, "painting steps (default: the preset's)", low=1, high=10000),
    Knob("strength", float, 1.0, "how strongly the painting's style shows: 1 is the preset's "
         "balance, 2 twice as much style, 0 the photo unchanged", low=0.0, high=100.0),
    Knob("style_scale", float, 1.0, "brush size: how big the painting's strokes are on the "
         "image; 1 as in the painting seen at the image's size, 2 twice as big, 0.5 half",
         low=0.25, high=4.0),
    Knob("content_weight", float, None, "content weight (default: the preset's)", low=0.0, high=1e9),
    Knob("tv_weight", float, None, "total-variation (smoothness) weight (default: the preset's)",
         low=0.0, high=1e9),
    Knob("preserve_colors", bool, False, "keep the photo's own colours: only the painting's "
         "brushwork and light and shade are taken"),
    Knob("preserve_exposure", bool, False, "keep the photo's exposure: a night stays a night, "
         "a bright day bright, in the painting's colours and strokes (otherwise the result takes "
         "most of the painting's lightness; keeping the photo's colours keeps it too)"),
    Knob("resolution", str, "auto", "auto: as much detail as the computer gives in reasonable "
         "time (with a graphics card, the layer's full size; without, the working size, scaled up); "
         "full: paint at the layer's full size on any computer (slow without a graphics card)",
         choices=RESOLUTIONS),
    Knob("init", str, "content", "start from the content image or from noise", choices=INITS),
    Knob("seed", int, 0, "random seed: the same seed on the same computer gives the same "
         "result", low=0, high=SEED_MAX),
)}


def style_shares(weights, count, most):
    """Each of `count` paintings' share of the blend (summing to 1) from the user's weights
    (None: one painting, or equal shares); ValueError saying why when they cannot be used.
    `most`: the most paintings one job may blend (nst_protocol.MAX_STYLES)."""
    if not 1 <= count <= most:
        raise ValueError(f"give 1 to {most} style images, got {count}")
    if weights is None:
        return [1.0 / count] * count
    if not isinstance(weights, (list, tuple)) or len(weights) != count:
        raise ValueError(f"style_weights must be one number per style image ({count})")
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) \
                or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"style_weights must be numbers of 0 or more, got {weight!r}"[:200])
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("style_weights must not all be 0")
    if not math.isfinite(total):
        raise ValueError("style_weights are too large: their sum must be a finite number")
    return [weight / total for weight in weights]


def validate(settings):
    """Return a complete settings dict from a partial one, or raise ValueError on the first bad
    value. Unknown names are errors too, so a typo never passes silently."""
    if not isinstance(settings, dict):
        raise ValueError(f"settings must be an object, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(KNOBS))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; known: {', '.join(KNOBS)}")
    return {name: knob.check(settings.get(name, knob.default)) for name, knob in KNOBS.items()}
