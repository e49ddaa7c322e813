"""Blending weights for overlapping windows and the row-band accumulator.

A pixel covered by windows ``k = 1..K`` gets the weighted mean of their
outputs, ``y = sum_k w_k(p) f_k(p) / sum_k w_k(p)``, where ``w_k(p)`` is the
weight of window ``k`` at the pixel's position inside it. The weight is a
separable product ``w(r, c) = g(r; h) * g(c; w)`` of a 1-D ramp that is
largest in the window centre and falls off towards the window edge, where a
network sees the least context (the seams of tiled prediction). ``g`` never
drops below ``floor`` > 0, so a pixel at the scene border, which only the
border windows reach, still gets a well-defined (and exactly that window's)
value. With ``blend='uniform'`` every weight is 1: the plain average of
overlapping windows, which is mmseg's ``EncoderDecoder.slide_inference``
(``preds / count_mat``).

The ramps (``i`` = 0 .. n-1, ``t = (i + 0.5) / n``):

- ``'cosine'``: ``g = max(floor, sin(pi t))`` (a Hann window);
- ``'triangular'``: ``g = max(floor, 1 - |2t - 1|)``;
- ``'uniform'``: ``g = 1``.

:class:`RowBandAccumulator` holds the weighted sums only for the band of
scene rows that windows still in progress can touch (one window height), so
memory grows with the scene width and the window size, never with the scene
height; finished rows are handed to a callback (a GeoTIFF writer).
"""
from typing import Callable, Optional

import numpy as np

BLEND_MODES = ('cosine', 'triangular', 'uniform')


def ramp_1d(n: int, blend: str = 'cosine', floor: float = 0.1) -> np.ndarray:
    """1-D weights ``(n,)`` float32 in ``[floor, 1]`` (module docstring).

    Raises:
        ValueError: unknown ``blend``, ``n < 1`` or ``floor`` outside (0, 1].
    """
    if blend not in BLEND_MODES:
        raise ValueError(f'blend must be one of {BLEND_MODES}, got {blend!r}')
    if n < 1:
        raise ValueError(f'window length must be positive, got {n}')
    if not 0 < floor <= 1:
        raise ValueError(f'floor must lie in (0, 1], got {floor}')
    if blend == 'uniform':
        return np.ones(n, np.float32)
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    g = np.sin(np.pi * t) if blend == 'cosine' else 1 - np.abs(2 * t - 1)
    return np.maximum(g, floor).astype(np.float32)


def window_weights(height: int, width: int, blend: str = 'cosine',
                   floor: float = 0.1) -> np.ndarray:
    """``(height, width)`` float32 weights ``g(r; height) * g(c; width)``."""
    return np.outer(ramp_1d(height, blend, floor),
                    ramp_1d(width, blend, floor)).astype(np.float32)


class RowBandAccumulator:
    """Weighted sums of window outputs for the rows still open.

    Windows must arrive in the row-major order of
    :func:`mmringmoe.datasets.windows.window_grid` (all windows of one row
    start before the next): call :meth:`add` for each, then
    :meth:`finish_rows_before` with the next row start; rows above it are
    final, no later window reaches them, and ``emit(row0, values, weight_sum,
    valid)`` receives them, ``values`` ``(C, n, W)`` already divided by the
    weights (0 where no window contributed, with ``weight_sum`` 0 there).

    Memory: ``(C + 2) x band_height x W`` values, ``band_height`` = the window
    height.

    Args:
        channels (int): C, output channels per pixel (class logits, 1 for
            depth).
        height, width (int): scene size.
        band_height (int): the window height (rows a window spans).
        emit (callable): ``emit(row0, values, weight_sum, valid)``.
    """

    def __init__(self, channels: int, height: int, width: int,
                 band_height: int,
                 emit: Callable[[int, np.ndarray, np.ndarray, np.ndarray],
                                None]):
        self.channels, self.height, self.width = channels, height, width
        self.cap = min(band_height, height)
        self.emit = emit
        self.row0 = 0  # scene row of buffer row 0; rows above are emitted
        self.acc = np.zeros((channels, self.cap, width), np.float32)
        self.wsum = np.zeros((self.cap, width), np.float32)
        self.valid = np.zeros((self.cap, width), bool)

    def add(self, row_off: int, col_off: int, values: np.ndarray,
            weights: np.ndarray, valid: Optional[np.ndarray] = None):
        """Add ``values`` ``(C, h, w)`` of a window at (row_off, col_off)
        with ``weights`` ``(h, w)``; ``valid`` ``(h, w)`` marks input pixels
        holding data (pixels outside the scene are cut off)."""
        c, h, w = values.shape
        h = min(h, self.height - row_off)
        w = min(w, self.width - col_off)
        r = row_off - self.row0
        if r < 0 or r + h > self.cap:
            raise ValueError(
                f'window at row {row_off} (height {h}) lies outside the open '
                f'band of rows {self.row0}..{self.row0 + self.cap}: windows '
                'must come in row-major order')
        wt = weights[:h, :w]
        self.acc[:, r:r + h, col_off:col_off + w] += values[:, :h, :w] * wt
        self.wsum[r:r + h, col_off:col_off + w] += wt
        if valid is not None:
            self.valid[r:r + h, col_off:col_off + w] |= valid[:h, :w]

    def finish_rows_before(self, row: int):
        """Emit rows ``[row0, row)`` and move the band down to ``row``."""
        row = min(row, self.height)
        while row - self.row0 > self.cap:  # rows no window reached
            self.finish_rows_before(self.row0 + self.cap)
        n = row - self.row0
        if n <= 0:
            return
        wsum = self.wsum[:n].copy()
        # sum / weight where a window contributed, 0 elsewhere (one pass,
        # no temporaries of the band's size)
        values = np.zeros((self.channels, n, self.width), np.float32)
        np.divide(self.acc[:, :n], wsum, out=values, where=wsum > 0)
        self.emit(self.row0, values, wsum, self.valid[:n].copy())
        keep = self.cap - n
        if keep > 0:
            self.acc[:, :keep] = self.acc[:, n:n + keep]
            self.wsum[:keep] = self.wsum[n:n + keep]
            self.valid[:keep] = self.valid[n:n + keep]
        self.acc[:, max(keep, 0):] = 0
        self.wsum[max(keep, 0):] = 0
        self.valid[max(keep, 0):] = False
        self.row0 = row

    def finish(self):
        """Emit every remaining row."""
        self.finish_rows_before(self.height)

    @property
    def nbytes(self) -> int:
        return self.acc.nbytes + self.wsum.nbytes + self.valid.nbytes


__all__ = ['BLEND_MODES', 'ramp_1d', 'window_weights', 'RowBandAccumulator']
