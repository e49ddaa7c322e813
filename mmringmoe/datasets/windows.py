"""One sliding-window grid for tiling, dataset conversion and scene inference.

Windows are ``(row_off, col_off, height, width)`` in pixels of the scene. Along
each axis the starts are ``0, stride, 2*stride, ...`` and the last window is
aligned to the scene border (``length - size``), so every pixel lies in at
least one window and no window leaves the scene; this is the grid of mmseg's
``EncoderDecoder.slide_inference`` (``h_idx * h_stride`` clamped to
``H - h_crop``), written out once for every tool.

A scene smaller than one window along an axis is handled by ``small``:

- ``'error'``: :class:`SceneTooSmallError` naming both sizes;
- ``'pad'``: one window of full size starting at 0 that reaches past the
  scene; readers fill the outside with nodata (rasterio boundless read) and
  mark it invalid;
- ``'shrink'``: one window of the scene's size along that axis.
"""
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple, \
    Union

import numpy as np

IntPair = Union[int, Sequence[int]]
SMALL_MODES = ('error', 'pad', 'shrink')


class SceneTooSmallError(ValueError):
    """A scene is smaller than one window and ``small='error'``."""


class Window(NamedTuple):
    """A window in pixel coordinates of its scene (rows from the top)."""
    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def slices(self) -> Tuple[slice, slice]:
        """``(rows, cols)`` slices of the window in a scene array (clipped by
        numpy where a padded window reaches past the scene)."""
        return (slice(self.row_off, self.row_off + self.height),
                slice(self.col_off, self.col_off + self.width))

    def to_rasterio(self):
        """The same window as ``rasterio.windows.Window(col, row, w, h)``."""
        from rasterio.windows import Window as RioWindow
        return RioWindow(self.col_off, self.row_off, self.width, self.height)

    def transform(self, scene_transform):
        """Affine 6-tuple of this window given the scene's (rasterio order):
        the scene transform moved by ``col_off`` columns and ``row_off``
        rows, so pixel (r, c) of the window maps where pixel
        (row_off + r, col_off + c) of the scene does."""
        return window_transform(scene_transform, self.row_off, self.col_off)


def _pair(v: IntPair, name: str) -> Tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    v = tuple(int(x) for x in v)
    if len(v) != 2 or min(v) <= 0:
        raise ValueError(f'{name} must be a positive int or (h, w), got {v}')
    return v


def window_starts(length: int, size: int, stride: int,
                  small: str = 'error', what: str = 'scene') -> List[int]:
    """Start offsets along one axis; the last one is ``length - size``.

    Args:
        length (int): scene length in pixels.
        size (int): window length in pixels.
        stride (int): step between starts (``<= size`` for full coverage;
            a larger stride leaves gaps and is refused).
        small (str): what to do when ``length < size`` (module docstring).

    Returns:
        list[int]: increasing starts; ``[0]`` for a scene of exactly one window
        (or a small one with ``'pad'``/``'shrink'``).

    Raises:
        SceneTooSmallError: ``length < size`` with ``small='error'``.
        ValueError: bad arguments, or ``stride > size``.
    """
    if small not in SMALL_MODES:
        raise ValueError(f'small must be one of {SMALL_MODES}, got {small!r}')
    if size <= 0 or stride <= 0 or length <= 0:
        raise ValueError(f'length, size and stride must be positive, got '
                         f'{length}, {size}, {stride}')
    if stride > size:
        raise ValueError(f'stride {stride} > window size {size} would leave '
                         'pixels in no window')
    if length < size:
        if small == 'error':
            raise SceneTooSmallError(
                f'{what} of {length} px is smaller than one window of '
                f'{size} px; pad it or use a smaller window')
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def window_grid(height: int, width: int, size: IntPair,
                stride: Optional[IntPair] = None,
                small: str = 'error') -> List[Window]:
    """All windows of a ``height`` x ``width`` scene, row-major.

    Args:
        height, width (int): scene size in pixels.
        size (int | (h, w)): window size.
        stride (int | (h, w), optional): step; defaults to ``size`` (no
            overlap). Overlap = size - stride.
        small (str): ``'error'``, ``'pad'`` or ``'shrink'`` for a scene
            smaller than the window (module docstring).

    Returns:
        list[Window]: with ``small='shrink'`` the window is clipped to the
        scene; with ``'pad'`` it keeps its size and reaches past the scene.

    Raises:
        SceneTooSmallError: the scene is smaller than one window and
            ``small='error'`` (the message names both sizes).
    """
    sh, sw = _pair(size, 'size')
    th, tw = _pair(stride if stride is not None else size, 'stride')
    if small == 'error' and (height < sh or width < sw):
        raise SceneTooSmallError(
            f'scene of {height} x {width} px (rows x cols) is smaller than '
            f'one window of {sh} x {sw} px; pad it or use a smaller window')
    rows = window_starts(height, sh, th, small)
    cols = window_starts(width, sw, tw, small)
    wh = min(sh, height) if small == 'shrink' else sh
    ww = min(sw, width) if small == 'shrink' else sw
    return [Window(r, c, wh, ww) for r in rows for c in cols]


def iter_windows(height: int, width: int, size: IntPair,
                 stride: Optional[IntPair] = None,
                 small: str = 'error') -> Iterator[Window]:
    """Generator form of :func:`window_grid`."""
    yield from window_grid(height, width, size, stride, small)


def window_transform(scene_transform, row_off: int, col_off: int):
    """Affine 6-tuple of a window starting at (``row_off``, ``col_off``) of a
    scene with ``scene_transform`` (6-tuple or ``Affine``); None stays None."""
    if scene_transform is None:
        return None
    a, b, c, d, e, f = (float(v) for v in tuple(scene_transform)[:6])
    return (a, b, a * col_off + b * row_off + c, d, e,
            d * col_off + e * row_off + f)


def coverage(windows: Sequence[Window], height: int, width: int) -> np.ndarray:
    """``(height, width)`` int array: how many windows cover each pixel."""
    cov = np.zeros((height, width), np.int32)
    for w in windows:
        cov[w.slices] += 1
    return cov


__all__ = ['Window', 'SceneTooSmallError', 'window_starts', 'window_grid',
           'iter_windows', 'window_transform', 'coverage', 'SMALL_MODES']
