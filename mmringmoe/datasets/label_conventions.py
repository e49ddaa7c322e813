"""Label map reading and the value conventions of label files.

Binary masks (change detection, building / water masks, validity masks) are
stored on disk in several conventions:

============== ============================================ =================
convention     file values                                  decoded
============== ============================================ =================
``'0/1'``      0 = negative, 1 = positive                   0, 1
``'0/255'``    0 = negative, 255 = positive                 0, 1
``'0/1/255'``  0 = negative, 1 = positive, 255 = ignore     0, 1, ignore
``'0/255-jpeg'`` JPEG-compressed 0/255: any 0..255, split   0, 1
               at ``threshold`` (128)
``'auto'``     detected per file by :func:`detect_binary_convention`;
               ambiguous files are refused
============== ============================================ =================

Every explicit convention checks the file against it and refuses (one
``ValueError`` line naming the file, the values found and the values
expected) a file that does not fit, so a 0/255 mask read as 0/1 or a 0/1 mask
read as JPEG-noisy 0/255 stops instead of loading as all-negative.
Multi-class maps use ``'index'`` (class indices, ``ignore_index`` for
unlabelled pixels); JPEG is refused for them because its compression changes
class indices along every boundary.
"""
from typing import Optional, Tuple

import numpy as np

from .transforms import raster_io

BINARY_CONVENTIONS = ('0/1', '0/255', '0/1/255', '0/255-jpeg')
LABEL_CONVENTIONS = ('index', ) + BINARY_CONVENTIONS + ('auto', )
JPEG_EXTS = ('.jpg', '.jpeg')
#: 'auto' takes a file with other values than 0/1/255 for JPEG-noisy 0/255
#: when at most this share of its pixels lies in ``JPEG_MID_RANGE``.
JPEG_MAX_MID_SHARE = 0.05
JPEG_MID_RANGE = (48, 207)


def check_convention(convention: str, binary_only: bool = False) -> str:
    """Validate a ``label_convention`` argument; returns it."""
    allowed = (BINARY_CONVENTIONS + ('auto', )) if binary_only \
        else LABEL_CONVENTIONS
    if convention not in allowed:
        raise ValueError(f'label_convention must be one of {allowed}, got '
                         f'{convention!r}')
    return convention


def is_jpeg(path) -> bool:
    return str(path).lower().endswith(JPEG_EXTS)


def read_label_map_with_valid(path: str,
                              backend_args: Optional[dict] = None,
                              allow_multiband: bool = False):
    """:func:`read_label_map` plus the label file's own ``(H, W)`` bool
    validity (False where the file declares nodata or masks the pixel; all
    True for files that declare nothing or a reader without masks)."""
    reader = getattr(raster_io, 'read_raster_with_meta', None)
    if reader is not None:
        arr, meta = reader(path, backend_args=backend_args)
        valid = np.asarray(meta.valid_mask, bool)
    else:
        arr = raster_io.read_raster(path, backend_args)
        valid = np.ones(arr.shape[:2], bool)
    return _check_label_array(arr, path, allow_multiband), valid


def read_label_map(path: str, backend_args: Optional[dict] = None,
                   allow_multiband: bool = False) -> np.ndarray:
    """Read a label raster with the file's own dtype (16-bit kept).

    Returns ``(H, W)`` for a single-band file (and for a file of identical
    bands, e.g. a grey mask saved as RGB: no value is lost), ``(H, W, C)``
    when ``allow_multiband`` and the bands differ (one-hot rasters).

    Raises:
        ValueError: bands that differ (``allow_multiband=False``; an RGB
            colour-coded label must be converted to class indices first),
            non-integral float values.
    """
    return read_label_map_with_valid(path, backend_args, allow_multiband)[0]


def _check_label_array(arr: np.ndarray, path: str,
                       allow_multiband: bool) -> np.ndarray:
    if arr.ndim != 3:
        raise ValueError(f'Label map {path!r}: found array of shape '
                         f'{arr.shape}; expected (H, W) or (H, W, C).')
    if arr.dtype.kind == 'f':
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise ValueError(
                f'Label map {path!r}: found non-integer float values '
                f'({arr.dtype}); expected integer class indices or mask '
                'values.')
    elif arr.dtype.kind not in 'uib':
        raise ValueError(f'Label map {path!r}: found dtype {arr.dtype}; '
                         'expected integer class indices or mask values.')
    if arr.shape[2] == 1 or all(np.array_equal(arr[..., 0], arr[..., c])
                                for c in range(1, arr.shape[2])):
        return arr[..., 0]
    if allow_multiband:
        return arr
    raise ValueError(
        f'Label map {path!r}: found {arr.shape[2]} bands that differ '
        f'(shape {arr.shape}); expected one band of labels (convert a '
        'colour-coded label to class indices first).')


def _values(label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    return np.unique(label, return_counts=True)


def detect_binary_convention(label: np.ndarray, path: str = '<array>',
                             jpeg: Optional[bool] = None) -> str:
    """The convention of a binary mask file, or ``ValueError`` if ambiguous.

    Rule (``vals`` = the set of values in the file):

    * ``vals`` within {0, 1}: ``'0/1'`` (also 0/1/255 without ignore pixels:
      same decoding);
    * ``vals`` within {0, 1, 255}, with 1 and 255: ``'0/1/255'``;
    * ``vals`` within {0, 255}, with 255: ``'0/255'`` for a JPEG file;
      otherwise refused: 0/255 (255 = positive) and 0/1/255 without positive
      pixels (255 = ignore) cannot be told apart;
    * other values: ``'0/255-jpeg'`` for a JPEG file with values above
      207 and at most ``JPEG_MAX_MID_SHARE`` (5 %) of its pixels in
      ``JPEG_MID_RANGE`` (48..207), i.e. values clustered at 0 and 255 as
      JPEG leaves them; otherwise refused (not a binary mask, e.g. class
      indices; a PNG / TIFF has no compression noise).
    """
    jpeg = is_jpeg(path) if jpeg is None else jpeg
    vals, counts = _values(label)
    s = set(vals.tolist())
    if s <= {0, 1}:
        return '0/1'
    if s <= {0, 1, 255} and 1 in s:
        return '0/1/255'
    if s <= {0, 255}:
        if jpeg:
            return '0/255-jpeg'
        raise ValueError(
            f'Label {path!r}: found values {{0, 255}}, which is either 0/255 '
            '(255 = positive) or 0/1/255 without positive pixels (255 = '
            "ignore); set label_convention='0/255' or '0/1/255'.")
    lo, hi = JPEG_MID_RANGE
    mid = counts[(vals >= lo) & (vals <= hi)].sum() / counts.sum()
    if jpeg and vals.min() >= 0 and vals.max() > hi \
            and mid <= JPEG_MAX_MID_SHARE:
        return '0/255-jpeg'
    raise ValueError(
        f'Label {path!r}: found values {_show(vals)} ({100 * mid:.1f} % of '
        f'pixels in {lo}..{hi}); expected a binary mask (0/1, 0/255, '
        '0/1/255 or JPEG-noisy 0/255).')


def _show(vals: np.ndarray, n: int = 8) -> str:
    vals = vals.tolist()
    return str(vals) if len(vals) <= n else \
        f'[{", ".join(map(str, vals[:n // 2]))}, ..., ' \
        f'{", ".join(map(str, vals[-n // 2:]))}] ({len(vals)} values)'


def decode_binary_label(label: np.ndarray, convention: str = 'auto',
                        ignore_index: int = 255, path: str = '<array>',
                        threshold: int = 128,
                        jpeg: Optional[bool] = None) -> np.ndarray:
    """Decode a binary mask file's values to 0 / 1 / ``ignore_index``.

    Args:
        label: ``(H, W)`` integer array as read from the file.
        convention: one of ``BINARY_CONVENTIONS`` or ``'auto'`` (see the
            module docstring).
        ignore_index: value written for ignored pixels (0/1/255 only).
        path: file name for the error message.
        threshold: ``'0/255-jpeg'``: values >= threshold are positive.
        jpeg: whether the file is JPEG (default: from ``path``'s extension).

    Returns:
        ``(H, W)`` uint8 with 0 (negative), 1 (positive), ``ignore_index``.

    Raises:
        ValueError: one line naming ``path``, the values found and those the
            convention expects, when the file does not fit it.
    """
    check_convention(convention, binary_only=True)
    if label.ndim != 2:
        raise ValueError(f'Label {path!r}: found shape {label.shape}; '
                         'expected one band (H, W).')
    if convention == 'auto':
        convention = detect_binary_convention(label, path, jpeg)
    vals = np.unique(label)
    s = set(vals.tolist())
    expected = {'0/1': {0, 1}, '0/255': {0, 255}, '0/1/255': {0, 1, 255}}
    if convention in expected:
        if not s <= expected[convention]:
            raise ValueError(
                f'Label {path!r}: found values {_show(vals)}; label_convention'
                f' {convention!r} expects only {sorted(expected[convention])}.')
        out = np.zeros(label.shape, np.uint8)
        if convention == '0/255':
            out[label == 255] = 1
        else:
            out[label == 1] = 1
            out[label == 255] = ignore_index
        return out
    # 0/255-jpeg
    if vals.min() < 0 or vals.max() > 255:
        raise ValueError(f'Label {path!r}: found values {vals.min()}..'
                         f'{vals.max()}; label_convention {convention!r} '
                         'expects 0..255.')
    if 1 in s and s <= {0, 1}:
        raise ValueError(
            f'Label {path!r}: found values [0, 1]; label_convention '
            f"{convention!r} expects 0/255 (a 0/1 mask would load as all "
            "negative): use label_convention='0/1'.")
    if vals.max() < threshold and s != {0}:
        raise ValueError(
            f'Label {path!r}: found values {_show(vals)}, none >= '
            f'{threshold}; label_convention {convention!r} expects a 0/255 '
            'mask (class indices or a 0/1 mask would load as all negative).')
    return (label >= threshold).astype(np.uint8)


def decode_index_label(label: np.ndarray, path: str,
                       num_classes: Optional[int] = None,
                       ignore_index: int = 255) -> np.ndarray:
    """Check a class-index map and return it as uint8.

    Raises ``ValueError`` for a JPEG file (lossy: indices change along
    boundaries), for values outside 0..255 (16-bit maps are not wrapped),
    and, with ``num_classes``, for values >= num_classes other than
    ``ignore_index``.
    """
    if is_jpeg(path):
        raise ValueError(
            f'Label map {path!r}: found a JPEG file; class indices need a '
            'lossless format (PNG/TIFF); a JPEG binary mask takes '
            "label_convention='0/255-jpeg'.")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(
            f'Label map {path!r}: found values {label.min()}..{label.max()} '
            f'({label.dtype}); expected class indices in 0..255.')
    if num_classes is not None:
        vals = np.unique(label)
        bad = vals[(vals >= num_classes) & (vals != ignore_index)]
        if bad.size:
            raise ValueError(
                f'Label map {path!r}: found value(s) {_show(bad)} outside the '
                f'{num_classes} classes; expected 0..{num_classes - 1} and '
                f'ignore {ignore_index}.')
    return label.astype(np.uint8)


def one_hot_to_index(arr: np.ndarray, path: str,
                     ignore_index: int = 255) -> np.ndarray:
    """``(H, W, C)`` one-hot raster (band k non-zero where class k lies, as
    DynamicEarthNet stores it) -> ``(H, W)`` uint8, ``ignore_index`` where
    no band is set. A pixel with two bands set is refused: the raster is then
    not one-hot (e.g. colour-coded RGB labels)."""
    hot = arr != 0
    n = hot.sum(axis=2)
    if (n > 1).any():
        raise ValueError(
            f'Label map {path!r}: found {int((n > 1).sum())} pixels with '
            f'several of its {arr.shape[2]} bands set; expected a one-hot '
            'raster (one band per class) or one band of class indices.')
    seg = np.argmax(hot, axis=2).astype(np.uint8)
    seg[n == 0] = ignore_index
    return seg


def load_binary_label(path: str, convention: str = 'auto',
                      ignore_index: int = 255, threshold: int = 128,
                      backend_args: Optional[dict] = None) -> np.ndarray:
    """Read and decode a binary mask file (:func:`decode_binary_label`);
    pixels the file itself declares nodata (or masks) become
    ``ignore_index`` and take no part in the convention check."""
    label, valid = read_label_map_with_valid(path, backend_args)
    if not valid.all():
        label = np.where(valid, label, 0).astype(label.dtype)
    out = decode_binary_label(label, convention, ignore_index, path,
                              threshold)
    out[~valid] = ignore_index
    return out


def load_index_label(path: str, ignore_index: int = 255,
                     backend_args: Optional[dict] = None,
                     allow_one_hot: bool = True) -> np.ndarray:
    """Read a class-index map (or a one-hot raster) as ``(H, W)`` uint8
    (:func:`decode_index_label`, :func:`one_hot_to_index`); pixels the file
    declares nodata become ``ignore_index``."""
    arr, valid = read_label_map_with_valid(path, backend_args,
                                           allow_multiband=allow_one_hot)
    if not valid.all():
        arr = np.where(valid[..., None] if arr.ndim == 3 else valid, arr,
                       0).astype(arr.dtype)
    if arr.ndim == 3:
        seg = one_hot_to_index(arr, path, ignore_index)
    else:
        seg = decode_index_label(arr, path)
    seg[~valid] = ignore_index
    return seg


def nodata_to_ignore(label: np.ndarray, results: dict,
                     ignore_index: int = 255) -> np.ndarray:
    """``label`` with ``ignore_index`` wherever ``results['valid_mask']``
    (``(H, W)`` bool from the image loader; for a bitemporal pair the AND of
    both dates) is False. Without a ``valid_mask`` the label is returned
    unchanged. Raises ``ValueError`` when the mask and label sizes differ."""
    valid = results.get('valid_mask')
    if valid is None:
        return label
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != label.shape[:2]:
        raise ValueError(
            f'valid_mask of {results.get("img_path")!r} is {valid.shape} but '
            f'its label {results.get("seg_map_path")!r} is '
            f'{label.shape[:2]}.')
    if valid.all():
        return label
    label = label.copy()
    label[~valid] = ignore_index
    return label


__all__ = [
    'BINARY_CONVENTIONS', 'LABEL_CONVENTIONS', 'check_convention',
    'read_label_map', 'read_label_map_with_valid', 'detect_binary_convention', 'decode_binary_label',
    'decode_index_label', 'one_hot_to_index', 'load_binary_label',
    'load_index_label', 'is_jpeg', 'nodata_to_ignore'
]
