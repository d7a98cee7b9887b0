"""What the service needs of an engine (nst_server.engine.Stylizer is one): the service is typed
against this, never against the engine's modules."""
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..engine import Estimate, Progress, Regions


class Profile(Protocol):
    @property
    def dtype(self) -> Any: ...
    @property
    def working_size(self) -> int: ...


class Engine(Protocol):
    @property
    def device(self) -> Any: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def weights(self) -> str: ...
    @property
    def loaded(self) -> bool: ...

    def load(self) -> None: ...
    def unload(self) -> None: ...
    def style_cache_info(self) -> dict[str, int]: ...
    def estimate(self, settings: Mapping[str, Any], size: tuple[int, int]) -> Estimate: ...

    def stylize(self, content: np.ndarray, style: Sequence[Image.Image], settings: Mapping[str, Any],
                *, on_progress: Callable[[Progress], None], should_stop: Callable[[], bool],
                should_finish: Callable[[], bool], style_weights: Sequence[float] | None,
                regions: Regions | None) -> Image.Image: ...
