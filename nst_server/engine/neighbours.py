"""Neural-neighbour targets: the `painterly` quality's objective, after Kolkin et al.'s Neural
Neighbor Style Transfer (NNST, 2022).

Instead of matching the painting's Gram statistics, every place of the picture takes the features
of the painting's place that looks most like it, and the image is optimized towards those
features (the content term of objective.Objective, with these targets in place of the photo's).
Places are matched on relu4_1's grid (8x8-px cells) by centred cosine similarity of hypercolumns
(relu4_1 with relu3_1 pooled to its grid, each unit-normalized); a finer layer's target in a cell
is the painting's own activations in the matched cell, so strokes come over whole, not averaged.
Per-position terms add up over blocks like the content term: exact in blocks, as Gatys is.
"""
import torch
import torch.nn.functional as F

from .objective import Block, ByLayer, features_by_block
from .vgg import VGG19Features, layer_stride

MATCH_LAYERS = ("relu3_1", "relu4_1")  # the hypercolumn places are matched by
CELL = layer_stride("relu4_1")         # pixels per side of a matched place
ROWS_AT_ONCE = 4096                    # content places per similarity chunk (~64 MB a chunk)
# Past the first scale, what is matched is the painting so far blended with the photo, by this
# share (NNST's content weight): the neighbours follow the strokes already laid, and the photo.
MATCH_BLEND = 0.5


def neighbour_targets(vgg: VGG19Features, image: torch.Tensor, image_blocks: list[Block],
                      painting: torch.Tensor, painting_blocks: list[Block],
                      layers: list[str]) -> tuple[ByLayer, dict[str, float]]:
    """For each of `layers`, the activation map `image` should have: at each place the
    painting's activations at its nearest place. Also each layer's weight, 1 / mean square of
    its target, so every layer's term weighs alike whatever its activations' magnitude."""
    wanted = list(dict.fromkeys([*MATCH_LAYERS, *layers]))
    ours = features_by_block(vgg, image, list(MATCH_LAYERS), image_blocks)
    theirs = features_by_block(vgg, painting, wanted, painting_blocks)
    cells = nearest_cells(hypercolumns(ours), hypercolumns(theirs))
    grid, painting_grid = ours["relu4_1"].shape[-2:], theirs["relu4_1"].shape[-2:]
    targets = {name: _gather(theirs[name], cells, grid, painting_grid, name, _shape(image, name))
               for name in layers}
    weights = {name: 1.0 / max(float(torch.mean(t.float() ** 2)), 1e-12) for name, t in targets.items()}
    return targets, weights


def _shape(image: torch.Tensor, name: str) -> tuple[int, int]:
    """Layer `name`'s map size for `image` (each pooling floors)."""
    s = layer_stride(name)
    return image.shape[-2] // s, image.shape[-1] // s


def hypercolumns(features: ByLayer) -> torch.Tensor:
    """[places, channels] on relu4_1's grid: each matching layer unit-normalized per place."""
    grid = (features["relu4_1"].shape[-2], features["relu4_1"].shape[-1])
    parts = []
    for name in MATCH_LAYERS:
        f = features[name].float()
        if f.shape[-2:] != grid:
            f = F.adaptive_avg_pool2d(f, grid)
        parts.append(F.normalize(f, dim=1))
    return torch.cat(parts, 1)[0].flatten(1).T


def nearest_cells(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
    """For each of our places, the index of the painting's most similar place (cosine after
    centring both on the painting's mean, as NNST does)."""
    centre = theirs.mean(0, keepdim=True)
    theirs = F.normalize(theirs - centre, dim=1)
    best = []
    for rows in torch.split(ours, ROWS_AT_ONCE):
        best.append((F.normalize(rows - centre, dim=1) @ theirs.T).argmax(1))
    return torch.cat(best)


def _gather(painting: torch.Tensor, cells: torch.Tensor, grid: torch.Size,
            painting_grid: torch.Size, name: str, shape: tuple[int, int]) -> torch.Tensor:
    """Layer `name`'s [1, c, h, w] map of `shape` whose every cell holds the painting's
    activations in the matched cell (`cells`: the painting's place on its relu4_1 grid
    `painting_grid` for each place of our relu4_1 `grid`)."""
    per_cell = CELL // layer_stride(name)  # this layer's positions per cell side
    h, w = shape
    ys = torch.arange(h, device=painting.device)
    xs = torch.arange(w, device=painting.device)
    match = cells.to(painting.device).view(grid[0], grid[1])[
        (ys // per_cell).clamp_max(grid[0] - 1)[:, None], (xs // per_cell).clamp_max(grid[1] - 1)[None, :]]
    source_y = (match // painting_grid[1]) * per_cell + (ys % per_cell)[:, None]
    source_x = (match % painting_grid[1]) * per_cell + (xs % per_cell)[None, :]
    their_h, their_w = painting.shape[-2:]
    flat = (source_y.clamp_max(their_h - 1) * their_w + source_x.clamp_max(their_w - 1)).flatten()
    return painting.flatten(2)[:, :, flat].reshape(1, painting.shape[1], h, w)
