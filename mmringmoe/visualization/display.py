"""Any modality -> a display image (uint8 RGB), the one place that does it.

Every picture the project writes (the MIM hook, ``tools/test.py --show-dir``,
the analysis tools) goes through :func:`display_image`:

* ``opt``: the three bands as RGB. 8-bit data is shown as stored; 16-bit,
  other integer and float data are stretched per band between percentiles of
  the VALID pixels (never cast to uint8).
* ``ms``: false colour, NIR-R-G by default (band order B, G, R, NIR as the
  loaders keep it; ``bands=`` picks others). The legend states the choice.
* ``sar_l1``: Pauli RGB (R = |HH - VV|/sqrt2 double bounce, G = |HV + VH|/sqrt2
  volume, B = |HH + VV|/sqrt2 surface), each in dB and stretched.
* ``sar_l2``: amplitude in dB (20 log10) as grey, stretched.

Nodata pixels (``valid_mask`` False) never enter a percentile and are drawn
in :data:`NODATA_COLOR`.
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

#: RGB colour of pixels without a measurement (``valid_mask`` False).
NODATA_COLOR = (255, 0, 255)
#: Default display stretch: 2nd and 98th percentile of the valid pixels.
PERCENTILES = (2.0, 98.0)
#: Band names of each modality in the loaders' order (DESIGN.md section 3).
BAND_NAMES = dict(
    opt=('R', 'G', 'B'),
    ms=('B', 'G', 'R', 'NIR'),
    sar_l1=('HH_re', 'HH_im', 'HV_re', 'HV_im', 'VH_re', 'VH_im', 'VV_re',
            'VV_im'),
    sar_l2=('amplitude', ))
#: Default display bands (0-based) per modality; ms: NIR-R-G false colour.
DISPLAY_BANDS = dict(opt=(0, 1, 2), ms=(3, 2, 1), sar_l2=(0, ))
MODALITIES = ('opt', 'ms', 'sar_l1', 'sar_l2')


class DisplayImage(NamedTuple):
    """A display image and how it was made.

    Attributes:
        rgb (np.ndarray): uint8 ``(H, W, 3)``.
        legend (str): What the colours mean, e.g. ``'MS false colour NIR-R-G
            (bands 4, 3, 2), 2-98 % stretch'``.
    """
    rgb: np.ndarray
    legend: str


def _valid(shape: Tuple[int, int], valid_mask) -> np.ndarray:
    if valid_mask is None:
        return np.ones(shape, bool)
    valid_mask = np.asarray(valid_mask)
    if valid_mask.shape != tuple(shape):
        raise ValueError(f'valid_mask of shape {valid_mask.shape} does not '
                         f'match the image {tuple(shape)}.')
    return valid_mask.astype(bool)


def stretch_band(x: np.ndarray,
                 valid_mask: Optional[np.ndarray] = None,
                 percentiles: Sequence[float] = PERCENTILES) -> np.ndarray:
    """Linear stretch of one band to ``[0, 1]`` between percentiles.

    Args:
        x (np.ndarray): ``(H, W)`` (or any shape) numbers.
        valid_mask (np.ndarray, optional): bool of ``x``'s shape; only True
            and finite values enter the percentiles.
        percentiles (tuple): Low and high percentile (0-100).

    Returns:
        np.ndarray: float64 in ``[0, 1]``, ``x``'s shape; non-finite values
        and pixels outside ``valid_mask`` are 0. A constant band gives 0.
    """
    x = np.asarray(x, np.float64)
    finite = np.isfinite(x)
    sel = finite if valid_mask is None else finite & np.asarray(valid_mask,
                                                                bool)
    if not sel.any():
        return np.zeros(x.shape)
    lo, hi = np.percentile(x[sel], percentiles)
    if not hi > lo:
        hi = lo + 1e-12 * max(1.0, abs(lo))
    with np.errstate(invalid='ignore'):
        out = np.clip((x - lo) / (hi - lo), 0, 1)
    out[~sel] = 0
    return out


def percentile_stretch(img: np.ndarray,
                       valid_mask: Optional[np.ndarray] = None,
                       percentiles: Sequence[float] = PERCENTILES
                       ) -> np.ndarray:
    """Per-band :func:`stretch_band` of ``(H, W, C)`` (or ``(H, W)``) to
    uint8 of the same shape (0-255, rounded)."""
    img = np.asarray(img)
    if img.ndim == 2:
        return to_uint8(stretch_band(img, valid_mask, percentiles))
    out = np.stack([stretch_band(img[..., c], valid_mask, percentiles)
                    for c in range(img.shape[-1])], -1)
    return to_uint8(out)


def to_uint8(x01: np.ndarray) -> np.ndarray:
    """``[0, 1]`` floats -> uint8 0-255, rounded."""
    return (np.clip(x01, 0, 1) * 255 + 0.5).astype(np.uint8)


def paint_nodata(rgb: np.ndarray, valid_mask: Optional[np.ndarray],
                 color: Sequence[int] = NODATA_COLOR) -> np.ndarray:
    """Copy of ``rgb`` (uint8 ``(H, W, 3)``) with ``~valid_mask`` pixels in
    ``color``; ``valid_mask`` None returns ``rgb`` unchanged."""
    if valid_mask is None:
        return rgb
    valid = _valid(rgb.shape[:2], valid_mask)
    if valid.all():
        return rgb
    out = rgb.copy()
    out[~valid] = np.asarray(color, np.uint8)
    return out


def _grey(x: np.ndarray) -> np.ndarray:
    return np.repeat(x[..., None], 3, -1)


def _pct(percentiles) -> str:
    return f'{percentiles[0]:g}-{percentiles[1]:g} % stretch of valid pixels'


def _pauli_amplitudes(img: np.ndarray) -> np.ndarray:
    from mmringmoe.datasets.transforms.sar import as_complex
    z = as_complex(img)
    if z.shape[-1] != 4:
        raise ValueError('Pauli RGB needs the 4 polarisations HH, HV, VH, VV '
                         f'(8 real/imaginary channels), got shape {img.shape}')
    hh, hv, vh, vv = (z[..., i] for i in range(4))
    return np.stack([np.abs(hh - vv), np.abs(hv + vh), np.abs(hh + vv)],
                    -1) / np.sqrt(2)


def _db(x: np.ndarray, amplitude: bool) -> np.ndarray:
    """20 log10 |x| (amplitude) or 10 log10 x (power); non-positive -> NaN
    (so they stay out of the percentiles and draw as the dark end)."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        out = (20.0 if amplitude else 10.0) * np.log10(x)
    out[~(x > 0)] = np.nan
    return out


def pauli_rgb(img: np.ndarray,
              valid_mask: Optional[np.ndarray] = None,
              percentiles: Sequence[float] = PERCENTILES,
              db: bool = True) -> np.ndarray:
    """Pauli RGB of a SAR-L1 array, uint8 ``(H, W, 3)``.

    R = |HH - VV| / sqrt2 (double bounce), G = |HV + VH| / sqrt2 (volume),
    B = |HH + VV| / sqrt2 (surface), each in dB (20 log10, optional) and
    stretched between percentiles of the valid pixels (``valid_mask`` None:
    every finite value; a zero component sits at -200 dB, the dark end).

    Args:
        img (np.ndarray): ``(H, W, 8)`` HH, HV, VH, VV real then imaginary,
            any dtype, or ``(H, W, 4)`` complex.
        valid_mask (np.ndarray, optional): ``(H, W)`` bool.
        percentiles (tuple): Stretch percentiles.
        db (bool): Stretch dB values (True) or linear amplitudes.

    Raises:
        ValueError: not 4 polarisations; a mask of another shape.
    """
    from mmringmoe.datasets.transforms.sar import to_db
    rgb = _pauli_amplitudes(img)
    valid = _valid(rgb.shape[:2], valid_mask)
    if db:  # a zero component is -200 dB (1e-10 floor): the dark end
        rgb = to_db(rgb, amplitude=True)
    return percentile_stretch(rgb, valid, percentiles)


def sar_power_db(img: np.ndarray,
                 valid_mask: Optional[np.ndarray] = None,
                 percentiles: Sequence[float] = PERCENTILES) -> np.ndarray:
    """Polarimetric power (span, Eq. 5) of a SAR-L1 array in dB, stretched:
    uint8 ``(H, W)``. Zero power (fill value) draws black."""
    from mmringmoe.datasets.transforms.sar import sar_power
    power = sar_power(img)
    valid = _valid(power.shape, valid_mask)
    return to_uint8(stretch_band(_db(power, amplitude=False), valid,
                                 percentiles))


def amplitude_db(img: np.ndarray,
                 valid_mask: Optional[np.ndarray] = None,
                 percentiles: Sequence[float] = PERCENTILES,
                 band: int = 0) -> np.ndarray:
    """SAR-L2 band ``band`` as 20 log10 amplitude, stretched between
    percentiles of the valid positive pixels: uint8 ``(H, W)``.
    Non-positive amplitudes (no echo) draw black."""
    img = np.asarray(img)
    x = img if img.ndim == 2 else img[..., band]
    valid = _valid(x.shape, valid_mask)
    return to_uint8(stretch_band(_db(np.abs(x), amplitude=True), valid,
                                 percentiles))


def infer_modality(img: np.ndarray) -> str:
    """Modality from the array: complex or 8 bands -> ``sar_l1``, 1 ->
    ``sar_l2``, 3 -> ``opt``, 4 -> ``ms``.

    Raises:
        ValueError: another band count (name the modality instead).
    """
    if np.iscomplexobj(img):
        return 'sar_l1'
    c = 1 if img.ndim == 2 else img.shape[-1]
    by_count = {1: 'sar_l2', 3: 'opt', 4: 'ms', 8: 'sar_l1'}
    if c not in by_count:
        raise ValueError(f'Cannot tell the modality of a {c}-band image '
                         f'(shape {img.shape}); pass modality= one of '
                         f'{MODALITIES}.')
    return by_count[c]


def display_image(img: np.ndarray,
                  modality: Optional[str] = None,
                  valid_mask: Optional[np.ndarray] = None,
                  bands: Optional[Sequence[int]] = None,
                  percentiles: Sequence[float] = PERCENTILES,
                  nodata_color: Sequence[int] = NODATA_COLOR,
                  stretch_uint8: bool = False) -> DisplayImage:
    """Display image of one sample of any modality.

    Args:
        img (np.ndarray): ``(H, W, C)`` (or ``(H, W)``) as the loader gives
            it, in the file's dtype: opt 3 bands, ms 4 (B, G, R, NIR), sar_l1
            8 real/imaginary or 4 complex, sar_l2 1 (amplitude).
        modality (str, optional): ``'opt'``, ``'ms'``, ``'sar_l1'`` or
            ``'sar_l2'``; None infers it from the band count
            (:func:`infer_modality`).
        valid_mask (np.ndarray, optional): ``(H, W)`` bool, the loader's
            ``results['valid_mask']``. False pixels are left out of every
            percentile and drawn in ``nodata_color``.
        bands (sequence of int, optional): 0-based bands shown as R, G, B
            (opt, ms) or the band shown (sar_l2). Defaults:
            :data:`DISPLAY_BANDS` (ms NIR-R-G).
        percentiles (tuple): Stretch percentiles of the valid pixels.
        nodata_color (tuple): RGB of nodata pixels.
        stretch_uint8 (bool): Also stretch 8-bit opt/ms data (they are shown
            as stored by default).

    Returns:
        DisplayImage: ``rgb`` uint8 ``(H, W, 3)`` and the ``legend`` string.

    Raises:
        ValueError: unknown modality, too few bands for ``bands``, a mask of
        another shape.
    """
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    modality = modality or infer_modality(img)
    if modality not in MODALITIES:
        raise ValueError(f'Unknown modality {modality!r}; expected one of '
                         f'{MODALITIES}.')
    valid = _valid(img.shape[:2], valid_mask)
    if modality == 'sar_l1':
        # zero power (all eight values 0) is the SAR-L1 fill value, not a
        # measurement (as in sar.valid_power): nodata here too
        from mmringmoe.datasets.transforms.sar import sar_power
        with np.errstate(over='ignore', invalid='ignore'):
            power = sar_power(img)
        valid = valid & np.isfinite(power) & (power > 0)
        rgb = pauli_rgb(img, valid, percentiles)
        legend = ('SAR-L1 Pauli RGB: R |HH-VV| double bounce, G |HV+VH| '
                  'volume, B |HH+VV| surface; dB, ' + _pct(percentiles))
    elif modality == 'sar_l2':
        band = (bands or DISPLAY_BANDS['sar_l2'])[0]
        if band >= img.shape[-1]:
            raise ValueError(f'band {band} of a {img.shape[-1]}-band SAR-L2 '
                             'image')
        rgb = _grey(amplitude_db(img, valid, percentiles, band))
        which = '' if img.shape[-1] == 1 else f' band {band + 1}'
        legend = (f'SAR-L2{which} amplitude, 20 log10, '
                  + _pct(percentiles))
    else:
        bands = tuple(bands if bands is not None else DISPLAY_BANDS[modality])
        if max(bands) >= img.shape[-1]:
            raise ValueError(f'display bands {bands} need {max(bands) + 1} '
                             f'bands; the {modality} image has '
                             f'{img.shape[-1]}.')
        sel = img[..., list(bands)]
        names = BAND_NAMES[modality] if img.shape[-1] == len(
            BAND_NAMES[modality]) else tuple(f'b{i + 1}'
                                             for i in range(img.shape[-1]))
        combo = '-'.join(names[b] for b in bands)
        nums = ', '.join(str(b + 1) for b in bands)
        kind = ('MS false colour' if modality == 'ms' else 'optical')
        if sel.dtype == np.uint8 and not stretch_uint8:
            rgb = sel.copy()
            how = '8-bit as stored'
        else:
            rgb = percentile_stretch(sel, valid, percentiles)
            how = f'{img.dtype} data, ' + _pct(percentiles)
        if rgb.shape[-1] == 1:
            rgb = _grey(rgb[..., 0])
        legend = f'{kind} {combo} (bands {nums}), {how}'
    if not valid.all():
        legend += '; nodata in magenta' if tuple(nodata_color) == \
            NODATA_COLOR else f'; nodata in {tuple(nodata_color)}'
    return DisplayImage(paint_nodata(rgb, valid, nodata_color), legend)


__all__ = [
    'NODATA_COLOR', 'PERCENTILES', 'BAND_NAMES', 'DISPLAY_BANDS',
    'DisplayImage', 'stretch_band', 'percentile_stretch', 'to_uint8',
    'paint_nodata', 'pauli_rgb', 'sar_power_db', 'amplitude_db',
    'infer_modality', 'display_image'
]
