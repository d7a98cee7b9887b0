"""Neural-neighbour targets: the `painterly` quality's objective, after Kolkin et al.'s Neural
Neighbor Style Transfer (NNST, 2022).

Instead of matching the painting's Gram statistics, every place of the picture takes the features
of the painting's place that looks most like it, and the image is optimized towards those
features (the content term of objective.Objective, with these targets in place of the photo's).
Places are matched on relu4_1's grid (8x8-px cells) by centred cosine similarity of hypercolumns
(relu4_1 with relu3_1 pooled to its grid, each unit-normalized), each distance normalized by how
near the painting's place comes to any of ours (COMPLETENESS); a finer layer's target in a cell
is the painting's own activations in the matched cell, so strokes come over whole, not averaged.
Per-position terms add up over blocks like the content term: exact in blocks, as Gatys is.
"""
from collections.abc import Iterator

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
# Plain nearest neighbours copy one place of the painting over a whole flat sky or sea: rows of
# the same shape and streaks (the night seascape's water, the storm's sky). So a distance is
# divided by COMPLETENESS plus the least distance from that place of the painting to any of ours
# (the normalized nearest neighbour of Granot et al.'s GPNN, 2022): a place that is some place's
# near-exact match is dear elsewhere, and more of the painting is used. Smaller spreads more;
# judged on the four pairs of benchmarks/bench_look.py, 0.3 took the repeats and most streaks
# away and kept the photo's layout (docs/benchmarks.md, "Neighbours that spread").
COMPLETENESS = 0.3


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
    """For each of our places, the index of the painting's place at the least normalized
    distance: cosine distance after centring both on the painting's mean (as NNST does), over
    COMPLETENESS plus that painting place's least distance to any of ours. Two passes over our
    places in chunks, since the least distances need all of them: the matching's cost doubles."""
    centre = theirs.mean(0, keepdim=True)
    theirs = F.normalize(theirs - centre, dim=1)

    def chunks() -> Iterator[torch.Tensor]:  # centred and unit-normalized as they are used
        return (F.normalize(rows - centre, dim=1) for rows in torch.split(ours, ROWS_AT_ONCE))

    nearest = torch.stack([_distances(rows, theirs).amin(0) for rows in chunks()]).amin(0)
    return torch.cat([_distances(rows, theirs).div_(COMPLETENESS + nearest).argmin(1)
                      for rows in chunks()])


def _distances(rows: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
    """Cosine distances [rows, theirs] of unit vectors, in one buffer (a chunk's is the biggest
    thing matching holds: for a 20-MP layer's places, gigabytes)."""
    return (rows @ theirs.T).neg_().add_(1)


def _gather(painting: torch.Tensor, cells: torch.Tensor, grid: torch.Size,
            painting_grid: torch.Size, name: str, shape: tuple[int, int]) -> torch.Tensor:
    """Layer `name`'s [1, c, h, w] map of `shape` copied from the painting's matched cells
    (`cells`: the painting's place on its relu4_1 grid `painting_grid` for each place of our
    relu4_1 `grid`). Each position blends the copies of its four nearest cells, each copy carried
    past its cell's edge, by bilinear weight (the voting of patch-based synthesis): where
    neighbouring cells came from apart in the painting, their copies cross-fade instead of
    meeting in a seam every cell (an 8-px grid in the picture); where they came from together
    it is an exact copy."""
    per_cell = CELL // layer_stride(name)  # this layer's positions per cell side
    rows = _blended_cells(shape[0], per_cell, grid[0], painting.device)
    columns = _blended_cells(shape[1], per_cell, grid[1], painting.device)
    matches = cells.to(painting.device).view(grid[0], grid[1])
    their_h, their_w = painting.shape[-2:]
    flat_painting = painting.flatten(2)
    target = painting.new_zeros(1, painting.shape[1], shape[0] * shape[1])
    for cell_y, offset_y, weight_y in rows:
        for cell_x, offset_x, weight_x in columns:
            match = matches[cell_y[:, None], cell_x[None, :]]
            source_y = ((match // painting_grid[1]) * per_cell + offset_y[:, None]).clamp(0, their_h - 1)
            source_x = ((match % painting_grid[1]) * per_cell + offset_x[None, :]).clamp(0, their_w - 1)
            weight = (weight_y[:, None] * weight_x[None, :]).flatten().to(painting.dtype)
            target.add_(flat_painting.index_select(2, (source_y * their_w + source_x).flatten()).mul_(weight))
    return target.reshape(1, painting.shape[1], *shape)


def _blended_cells(length: int, per_cell: int, cells: int, device: torch.device
                   ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Along one axis of `length` positions: for the two cells nearest each position's centre,
    (cell index, the position's offset from that cell's first position, bilinear weight)."""
    position = torch.arange(length, device=device)
    if per_cell == 1:  # one position per cell: its own cell, whole
        cell = position.clamp_max(cells - 1)
        return [(cell, position - cell, torch.ones(length, device=device))]
    centre = (position + 0.5) / per_cell - 0.5  # in cells; a cell's centre is a whole number
    before = centre.floor().long()
    share_after = centre - before
    pairs = []
    for cell, weight in ((before, 1 - share_after), (before + 1, share_after)):
        cell = cell.clamp(0, cells - 1)
        pairs.append((cell, position - cell * per_cell, weight))
    return pairs
