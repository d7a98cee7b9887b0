"""The optimizer a level runs, and the guard that catches L-BFGS running away."""
import torch

from .presets import Preset


def make_optimizer(preset: Preset, x: torch.Tensor, memory: int,
                   detail: bool = False) -> torch.optim.Optimizer:
    """The preset's optimizer over `x`, Adam at a detail scale (`detail`; see Preset.detail_lr);
    L-BFGS keeps the preset's steps of history, fewer where they would not fit in `memory` bytes
    (a 24-MP image's step pair is 0.6 GB)."""
    if detail or preset.optimizer == "adam":  # fused: no image-sized temporaries in the step
        return torch.optim.Adam([x], lr=preset.detail_lr if detail else preset.lr, fused=True)
    pair = 2 * x.numel() * x.element_size()
    # One function evaluation per step and no line search, as in Gatys/Johnson's neural-style:
    # the step is the iteration the user sees and can cancel after.
    return torch.optim.LBFGS([x], lr=preset.lr, max_iter=1,
                             history_size=max(2, min(preset.history, memory // pair)),
                             tolerance_grad=0.0, tolerance_change=0.0)


# L-BFGS's steps do not depend on the loss's scale, save one: holding no curvature pair (torch
# drops a pair whose curvature is not positive) it steps by the raw gradient. From a start where
# the loss curves down along the gradient (the palette start of a dark storm photo against a
# bright painting: its features too weak for the painting's Grams) that step's RMS was ~800
# normalized units: the image blew up, the guard reset it, and the same cycle of three came back
# until 29 of the 52 iterations at 256 px were lost (measured, docs/benchmarks.md). So L-BFGS sees
# the loss scaled to make the gradient's RMS at a level's first evaluation UNIT_STEP (a few grey
# levels): that step is then a modest one, and every step made from curvature pairs is unchanged.
UNIT_STEP = 0.1


class DivergenceGuard:
    """L-BFGS without line search can step far past the minimum and, with the pixels clamped
    after the step, keep climbing (measured: bfloat16, style weight 20, a 96-px `fast` run ended
    at 21x the photo's style loss, colour confetti). Each evaluation sees the image before its
    step; once the loss is DIVERGED times the best seen at this level, the best image comes back
    and the caller starts L-BFGS afresh (its history described the runaway steps)."""

    DIVERGED = 2.0

    def __init__(self, x: torch.Tensor):
        self.before = x.detach().clone()  # the image the next evaluation sees
        self.best_image = self.before.clone()
        self.best = float("inf")

    def remember(self, x: torch.Tensor) -> None:
        self.before.copy_(x.detach())

    def diverged(self, x: torch.Tensor, loss: float) -> bool:
        """Whether `loss` (of the remembered image) ran away; if so `x` is reset to the best."""
        if loss < self.best:
            self.best = loss
            self.best_image.copy_(self.before)
            return False
        if loss <= self.DIVERGED * self.best:
            return False
        with torch.no_grad():
            x.copy_(self.best_image)
        return True
