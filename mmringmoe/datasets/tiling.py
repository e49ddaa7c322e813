"""Sliding-window tiling of large rasters (paper Appendix B.1).

192 x 192 windows with step 64; a tile is dropped when more than 30% of its
pixels are black border, i.e. all-zero in every band. By default only zero
pixels connected to the raster's outer edge count as border (the nodata frame
of a scene), so dark water or shadow inside the scene is kept;
``border_mode='any'`` counts every all-zero pixel.
"""
from typing import Iterator, NamedTuple, Tuple

import numpy as np


class Tile(NamedTuple):
    row: int
    col: int
    data: np.ndarray
    border_fraction: float


def window_starts(length: int, size: int, step: int):
    if length < size:
        return []
    return list(range(0, length - size + 1, step))


def black_border_mask(img: np.ndarray, mode: str = 'edge') -> np.ndarray:
    """Boolean ``(H, W)`` map of black-border pixels.

    ``img`` is ``(H, W)``, ``(H, W, C)`` or complex pairs ``(H, W, P, 2)``.
    """
    zero = img == 0
    while zero.ndim > 2:
        zero = zero.all(-1)
    if mode == 'any':
        return zero
    if mode != 'edge':
        raise ValueError(f"border mode must be 'edge' or 'any', got {mode!r}")
    from scipy import ndimage
    labels, _ = ndimage.label(zero)
    edge = np.unique(np.concatenate(
        [labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(labels, edge)


def tile_raster(img: np.ndarray,
                size: int = 192,
                step: int = 64,
                max_border: float = 0.3,
                border_mode: str = 'edge') -> Tuple[list, int]:
    """All windows of ``img``; returns ``(kept tiles, number dropped)``."""
    border = black_border_mask(img, border_mode)
    kept, dropped = [], 0
    for r in window_starts(img.shape[0], size, step):
        for c in window_starts(img.shape[1], size, step):
            frac = float(border[r:r + size, c:c + size].mean())
            if frac > max_border:
                dropped += 1
                continue
            kept.append(Tile(r, c, img[r:r + size, c:c + size], frac))
    return kept, dropped


def iter_tiles(img: np.ndarray, **kwargs) -> Iterator[Tile]:
    yield from tile_raster(img, **kwargs)[0]


__all__ = ['Tile', 'window_starts', 'black_border_mask', 'tile_raster',
           'iter_tiles']
