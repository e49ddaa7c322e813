"""Composition of prediction pictures: panels side by side, titles, legends,
colour bars. Pure numpy + OpenCV text; the drawing of masks and boxes is done
by the toolboxes' visualizers (:mod:`mmringmoe.visualization.visualizers`).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: RGB of changed pixels in change detection panels.
CHANGE_COLOR = (255, 0, 0)
_BG = (255, 255, 255)
_FG = (0, 0, 0)
_FONT_SCALE = 0.35
_LINE_H = 13


def _cv2():
    import cv2
    return cv2


def _wrap(text: str, width_px: int) -> List[str]:
    """Greedy word wrap for OpenCV's Hershey simplex font at our scale."""
    cv2 = _cv2()
    words, lines, cur = text.split(' '), [], ''
    for w in words:
        trial = (cur + ' ' + w).strip()
        tw = cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE,
                             1)[0][0]
        if tw > width_px - 6 and cur:
            lines.append(cur)
            cur = w
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


def text_strip(lines: Sequence[str], width: int) -> np.ndarray:
    """White uint8 ``(h, width, 3)`` strip with black wrapped text lines."""
    cv2 = _cv2()
    wrapped = [w for line in lines for w in (_wrap(line, width) or [''])]
    strip = np.full((_LINE_H * len(wrapped) + 4, width, 3), _BG, np.uint8)
    for i, line in enumerate(wrapped):
        cv2.putText(strip, line, (3, _LINE_H * (i + 1)),
                    cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, _FG, 1,
                    cv2.LINE_AA)
    return strip


def swatch_legend(names: Sequence[str], colors: Sequence[Sequence[int]],
                  width: int) -> np.ndarray:
    """Legend strip: a colour square and the name for every entry, flowing
    left to right over as many rows as ``width`` needs."""
    cv2 = _cv2()
    items = []
    for name, color in zip(names, colors):
        tw = cv2.getTextSize(str(name), cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE,
                             1)[0][0]
        items.append((str(name), tuple(int(c) for c in color), tw + 20))
    rows, cur, used = [], [], 0
    for it in items:
        if cur and used + it[2] > width:
            rows.append(cur)
            cur, used = [], 0
        cur.append(it)
        used += it[2]
    if cur:
        rows.append(cur)
    strip = np.full((_LINE_H * max(len(rows), 1) + 4, width, 3), _BG,
                    np.uint8)
    for r, row in enumerate(rows):
        x, y = 3, _LINE_H * (r + 1)
        for name, color, w in row:
            cv2.rectangle(strip, (x, y - 9), (x + 9, y), color, -1)
            cv2.rectangle(strip, (x, y - 9), (x + 9, y), _FG, 1)
            cv2.putText(strip, name, (x + 12, y), cv2.FONT_HERSHEY_SIMPLEX,
                        _FONT_SCALE, _FG, 1, cv2.LINE_AA)
            x += w
    return strip


def titled(img: np.ndarray, title: str) -> np.ndarray:
    """``img`` (uint8 RGB) with a one-line title strip above it."""
    return np.concatenate([text_strip([title], img.shape[1]), img], 0)


def hstack(panels: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels side by side (top aligned, white gaps, padded to the tallest)."""
    h = max(p.shape[0] for p in panels)
    out = []
    for i, p in enumerate(panels):
        if p.ndim == 2:
            p = np.repeat(p[..., None], 3, -1)
        if p.shape[0] < h:
            p = np.concatenate(
                [p, np.full((h - p.shape[0], p.shape[1], 3), _BG, np.uint8)])
        out.append(p)
        if i < len(panels) - 1:
            out.append(np.full((h, gap, 3), _BG, np.uint8))
    return np.concatenate(out, 1)


def vstack(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Parts above each other, padded on the right to the widest."""
    w = max(p.shape[1] for p in parts)
    out = []
    for p in parts:
        if p.shape[1] < w:
            p = np.concatenate(
                [p, np.full((p.shape[0], w - p.shape[1], 3), _BG, np.uint8)],
                1)
        out.append(p)
    return np.concatenate(out, 0)


def upscale(img: np.ndarray, min_size: int = 192) -> np.ndarray:
    """Nearest-neighbour integer upscaling so the short side is at least
    ``min_size`` (small test tiles stay readable; pixels stay exact)."""
    k = max(1, int(np.ceil(min_size / max(1, min(img.shape[:2])))))
    if k == 1:
        return img
    return np.repeat(np.repeat(img, k, 0), k, 1)


def figure(panels: Sequence[Tuple[str, np.ndarray]],
           legend_lines: Sequence[str] = (),
           swatches: Optional[Tuple[Sequence[str],
                                    Sequence[Sequence[int]]]] = None
           ) -> np.ndarray:
    """Titled panels side by side, then a swatch legend and text lines.

    Args:
        panels: ``(title, uint8 (H, W, 3))`` pairs.
        legend_lines: Text lines under the panels (the display legend ...).
        swatches: ``(names, colours)`` for a colour legend.

    Returns:
        np.ndarray: uint8 RGB ``(H', W', 3)``.
    """
    row = hstack([titled(img, title) for title, img in panels])
    parts = [row]
    if swatches is not None and len(swatches[0]):
        parts.append(swatch_legend(swatches[0], swatches[1], row.shape[1]))
    if legend_lines:
        parts.append(text_strip(legend_lines, row.shape[1]))
    return vstack(parts)


def colormap(values: np.ndarray, vmin: float, vmax: float,
             valid: Optional[np.ndarray] = None,
             cmap: str = 'viridis',
             invalid_color: Sequence[int] = (255, 0, 255)) -> np.ndarray:
    """Values -> uint8 RGB with a matplotlib colour map on ``[vmin, vmax]``;
    pixels outside ``valid`` (or non-finite) in ``invalid_color``."""
    import matplotlib
    x = np.asarray(values, np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((x - vmin) / span, 0, 1)
    t[~np.isfinite(t)] = 0
    rgb = (matplotlib.colormaps[cmap](t)[..., :3] * 255 + 0.5).astype(
        np.uint8)
    bad = ~np.isfinite(x)
    if valid is not None:
        bad |= ~np.asarray(valid, bool)
    rgb[bad] = np.asarray(invalid_color, np.uint8)
    return rgb


def colorbar(vmin: float, vmax: float, width: int, unit: str = '',
             cmap: str = 'viridis') -> np.ndarray:
    """Horizontal colour bar strip with its end values."""
    ramp = np.linspace(vmin, vmax, max(width - 6, 2))[None].repeat(10, 0)
    bar = colormap(ramp, vmin, vmax, cmap=cmap)
    bar = np.pad(bar, ((2, 2), (3, 3), (0, 0)), constant_values=255)
    labels = text_strip([f'{vmin:.3g} {unit}'.strip() + '  ...  '
                         + f'{vmax:.3g} {unit}'.strip()], width)
    return vstack([bar, labels])


def change_overlay(display: np.ndarray, change: np.ndarray,
                   valid: Optional[np.ndarray] = None,
                   color: Sequence[int] = CHANGE_COLOR,
                   alpha: float = 0.6) -> np.ndarray:
    """Changed pixels (``change`` == 1) of ``display`` blended with
    ``color``; pixels with another value (ignore, 255) stay as they are."""
    out = display.astype(np.float64).copy()
    m = np.asarray(change) == 1
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float64)
    return (out + 0.5).astype(np.uint8) if out.dtype != np.uint8 else out


__all__ = [
    'CHANGE_COLOR', 'text_strip', 'swatch_legend', 'titled', 'hstack',
    'vstack', 'upscale', 'figure', 'colormap', 'colorbar', 'change_overlay'
]
