"""SAR-L1 (fully polarimetric, complex) transforms.

Inputs are ``(H, W, 8)`` arrays from :class:`LoadComplexSAR`: HH, HV, VH, VV,
each real then imaginary. All arithmetic runs in float64 so int16 raw values
give exact powers (|x|^2 of int16 reaches 2^31, beyond float32's 24-bit
mantissa only at the last digits).
"""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS

_POL = dict(HH=0, HV=1, VH=2, VV=3)


def as_complex(img: np.ndarray) -> np.ndarray:
    """``(..., 8)`` real/imaginary channels (or ``(..., 4)`` complex) ->
    ``(..., 4)`` complex128."""
    if np.iscomplexobj(img):
        return img.astype(np.complex128)
    if img.shape[-1] % 2:
        raise ValueError('SAR-L1 arrays need an even number of channels '
                         f'(real/imaginary pairs), got shape {img.shape}.')
    x = img.astype(np.float64)
    return x[..., 0::2] + 1j * x[..., 1::2]


def sar_power(img: np.ndarray) -> np.ndarray:
    """Polarimetric power (span) |HH|^2 + |HV|^2 + |VH|^2 + |VV|^2, float64.

    Works on the raw values: sum over channels of re^2 + im^2.
    """
    if np.iscomplexobj(img):
        return (np.abs(img.astype(np.complex128))**2).sum(-1)
    x = img.astype(np.float64)
    return (x * x).sum(-1)


def sar_amplitude_phase(img: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-polarisation amplitude |z| and phase arg(z) in radians."""
    z = as_complex(img)
    return np.abs(z), np.angle(z)


def to_db(x: np.ndarray, amplitude: bool = False,
          eps: float = 1e-10) -> np.ndarray:
    """10 log10(power) or 20 log10(amplitude); ``eps`` keeps zeros finite."""
    factor = 20.0 if amplitude else 10.0
    return factor * np.log10(np.maximum(np.asarray(x, np.float64), 0) + eps)


def pauli_rgb(img: np.ndarray,
              percentiles: Sequence[float] = (2, 98),
              db: bool = True,
              valid_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Pauli RGB composite for display, uint8 ``(H, W, 3)``: see
    :func:`mmringmoe.visualization.pauli_rgb` (the one implementation)."""
    from mmringmoe.visualization.display import pauli_rgb as _pauli
    return _pauli(img, valid_mask, percentiles, db)


def power_display(img: np.ndarray,
                  percentiles: Sequence[float] = (2, 98),
                  valid_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Span in dB stretched to uint8 ``(H, W)`` for display: see
    :func:`mmringmoe.visualization.sar_power_db`."""
    from mmringmoe.visualization.display import sar_power_db
    return sar_power_db(img, valid_mask, percentiles)


_SCALES = ('linear', 'db', 'log1p')


def valid_power(img: np.ndarray,
                valid_mask: Optional[np.ndarray] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Polarimetric power and the pixels where it is a measurement.

    Args:
        img (np.ndarray): ``(H, W, 8)`` real/imaginary channels or
            ``(H, W, 4)`` complex, any dtype.
        valid_mask (np.ndarray, optional): ``(H, W)`` bool, the loader's
            valid-pixel mask (declared nodata, NaN, ...).

    Returns:
        tuple: ``power`` float64 ``(H, W)`` (Eq. 5, |HH|^2 + |HV|^2 + |VH|^2
        + |VV|^2 of the raw values) and ``valid`` bool ``(H, W)``: finite,
        strictly positive power inside ``valid_mask``. Zero power (all eight
        values 0) is the fill value of SAR-L1 products, not a measurement.

    Raises:
        ValueError: ``valid_mask`` is not ``(H, W)``.
    """
    with np.errstate(over='ignore', invalid='ignore'):
        power = sar_power(img)
        valid = np.isfinite(power) & (power > 0)
    if valid_mask is not None:
        valid_mask = np.asarray(valid_mask)
        if valid_mask.shape != power.shape:
            raise ValueError(f'valid_mask of shape {valid_mask.shape} does '
                             f'not match the SAR-L1 image {power.shape}.')
        valid &= valid_mask.astype(bool)
    return power, valid


def power_db_values(img: np.ndarray,
                    valid_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """``10 log10(power)`` of the valid pixels (see :func:`valid_power`),
    1-D float64, no epsilon.

    The SAR-L1 statistics ``power_db_mean``/``power_db_std`` of
    ``compute_rs_stats.py`` are the mean and population std of these values
    pooled over every tile; :class:`SARPower` with ``scale='db'`` standardises
    exactly the same values.
    """
    power, valid = valid_power(img, valid_mask)
    return 10.0 * np.log10(power[valid])


def scale_power(power: np.ndarray, scale: str) -> np.ndarray:
    """``'linear'`` (unchanged), ``'db'`` (10 log10, no epsilon: give
    positive power only, see :func:`valid_power`) or ``'log1p'``."""
    if scale == 'linear':
        return power
    if scale == 'db':
        with np.errstate(divide='ignore', invalid='ignore'):
            return 10.0 * np.log10(power)
    if scale == 'log1p':
        return np.log1p(power)
    raise ValueError(f'Unknown power scale {scale!r}; expected one of {_SCALES}')


@TRANSFORMS.register_module()
class SARPower(BaseTransform):
    """Physics-informed SAR-L1 target: the polarimetric power (Eq. 5).

    Computed from the raw complex values in ``results[in_key]``: put it
    right after the loader, BEFORE any crop, resize or flip (interpolating
    complex speckle mixes phases: a 2x bilinear upsampling lowers the mean
    power by about 4 dB) and before any normalisation. The geometric
    transforms then move the power map and the valid mask with the image
    (``RSRandomResizedCrop``/``RSResize``/``RSRandomFlip``, nearest
    neighbour).

    Pixels without a measurement -- non-positive or non-finite power, or
    ``False`` in an incoming ``results['valid_mask']`` -- are excluded: they
    are ``False`` in the ``results['valid_mask']`` written here, hold 0 in
    the target, and are left out of the reconstruction loss
    (:class:`mmringmoe.models.RingMoEMIM`). They never become -100 dB.

    Writes ``results[out_key]`` float32 ``(H, W)`` and
    ``results['valid_mask']`` bool ``(H, W)``.

    Args:
        in_key (str): Source array, ``(H, W, 8)`` real/imaginary or
            ``(H, W, 4)`` complex. Defaults to ``'img'``.
        out_key (str): Destination. Defaults to ``'gt_power'``.
        scale (str): ``'linear'`` (the power itself), ``'db'``
            (10 log10 power) or ``'log1p'``. Raw int16 powers span ~10 orders
            of magnitude, which a squared-error loss cannot fit, hence the
            log scales for training. Defaults to ``'linear'``.
        mean (float, optional): Subtracted after scaling.
        std (float, optional): Divided by after scaling.
        stats_file (str, optional): Statistics JSON of
            ``compute_rs_stats.py``; with ``scale='db'`` and no ``mean``/
            ``std``, its ``sar_l1.power_db_mean/std`` are used (read at the
            first sample, so the file may be written with the data). They
            must be the statistics of :func:`power_db_values` (positive power
            only), which the file states with ``power_db_num_pixels``.

    Raises:
        ValueError: not a SAR-L1 array; a statistics file without positive
            power statistics.
    """

    def __init__(self,
                 in_key: str = 'img',
                 out_key: str = 'gt_power',
                 scale: str = 'linear',
                 mean: Optional[float] = None,
                 std: Optional[float] = None,
                 stats_file: Optional[str] = None):
        if scale not in _SCALES:
            raise ValueError(f'scale must be one of {_SCALES}, got {scale!r}')
        if std is not None and not std > 0:
            raise ValueError(f'SARPower: std must be positive, got {std}')
        self.in_key, self.out_key, self.scale = in_key, out_key, scale
        self.mean, self.std = mean, std
        self.stats_file = stats_file

    def _load_stats(self):
        import json
        with open(self.stats_file) as f:
            st = json.load(f).get('sar_l1', {})
        if 'power_db_mean' not in st:
            raise ValueError(f'{self.stats_file!r} has no sar_l1 power_db '
                             'statistics; rerun compute_rs_stats.py')
        if 'power_db_num_pixels' not in st:
            raise ValueError(
                f'{self.stats_file!r}: sar_l1 power_db statistics without '
                '"power_db_num_pixels" predate positive-power-only statistics '
                '(zero power counted as -100 dB); rerun compute_rs_stats.py')
        if self.scale != 'db':
            raise ValueError("SARPower: stats_file statistics are in dB; use "
                             "scale='db'")
        if not st['power_db_std'] > 0:
            raise ValueError(f'{self.stats_file!r}: sar_l1 power_db_std is '
                             f'{st["power_db_std"]}')
        self.mean, self.std = st['power_db_mean'], st['power_db_std']
        self.stats_file = None

    def transform(self, results: dict) -> dict:
        img = results[self.in_key]
        if img.ndim != 3 or (img.shape[-1] != 8 and not np.iscomplexobj(img)):
            raise ValueError(
                f'SARPower on {results.get("img_path")!r}: expected an '
                f'(H, W, 8) SAR-L1 array, got shape {img.shape}.')
        if self.stats_file is not None and self.mean is None:
            self._load_stats()
        power, valid = valid_power(img, results.get('valid_mask'))
        target = np.zeros(power.shape, np.float64)
        v = scale_power(power[valid], self.scale)
        if self.mean is not None:
            v = v - self.mean
        if self.std is not None:
            v = v / self.std
        target[valid] = v
        results[self.out_key] = target.astype(np.float32)
        results['valid_mask'] = valid
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(in_key={self.in_key!r}, '
                f'out_key={self.out_key!r}, scale={self.scale!r})')


@TRANSFORMS.register_module()
class SARAmplitudePhase(BaseTransform):
    """Replace the 8 real/imaginary channels by amplitude and/or phase.

    Args:
        mode (str): ``'amplitude'`` (4 channels), ``'phase'`` (4 channels,
            radians) or ``'amplitude_phase'`` (8 channels: every polarisation's
            amplitude then phase). Defaults to ``'amplitude_phase'``.
        key (str): Array to convert. Defaults to ``'img'``.
    """

    def __init__(self, mode: str = 'amplitude_phase', key: str = 'img'):
        if mode not in ('amplitude', 'phase', 'amplitude_phase'):
            raise ValueError(f'Unknown mode {mode!r}')
        self.mode, self.key = mode, key

    def transform(self, results: dict) -> dict:
        amp, pha = sar_amplitude_phase(results[self.key])
        if self.mode == 'amplitude':
            out = amp
        elif self.mode == 'phase':
            out = pha
        else:
            out = np.stack([amp, pha], -1).reshape(*amp.shape[:-1], -1)
        results[self.key] = out.astype(np.float32)
        results['num_bands'] = out.shape[-1]
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(mode={self.mode!r})'


@TRANSFORMS.register_module()
class SARLogScale(BaseTransform):
    """dB or log scaling of SAR amplitudes/intensities (any band count).

    Args:
        mode (str): ``'db_amplitude'`` (20 log10 |x|), ``'db_power'``
            (10 log10 x) or ``'log1p'`` (ln(1 + |x|)). Defaults to
            ``'db_amplitude'``.
        key (str): Array to scale. Defaults to ``'img'``.
        eps (float): Added before the log. Defaults to 1e-10.
    """

    def __init__(self, mode: str = 'db_amplitude', key: str = 'img',
                 eps: float = 1e-10):
        if mode not in ('db_amplitude', 'db_power', 'log1p'):
            raise ValueError(f'Unknown mode {mode!r}')
        self.mode, self.key, self.eps = mode, key, eps

    def transform(self, results: dict) -> dict:
        x = np.abs(np.asarray(results[self.key], np.float64))
        if self.mode == 'log1p':
            out = np.log1p(x)
        else:
            out = to_db(x, amplitude=self.mode == 'db_amplitude', eps=self.eps)
        results[self.key] = out.astype(np.float32)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(mode={self.mode!r})'


@TRANSFORMS.register_module()
class SARPauliRGB(BaseTransform):
    """Pauli RGB composite (uint8) of a SAR-L1 array, for display.

    Args:
        in_key (str): SAR-L1 array. Defaults to ``'img'``.
        out_key (str): Destination; ``'img'`` replaces the input. Defaults to
            ``'pauli_rgb'``.
        percentiles (tuple): Display stretch. Defaults to (2, 98).
    """

    def __init__(self, in_key: str = 'img', out_key: str = 'pauli_rgb',
                 percentiles: Sequence[float] = (2, 98)):
        self.in_key, self.out_key = in_key, out_key
        self.percentiles = tuple(percentiles)

    def transform(self, results: dict) -> dict:
        results[self.out_key] = pauli_rgb(results[self.in_key],
                                          self.percentiles)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(in_key={self.in_key!r}, '
                f'out_key={self.out_key!r})')


__all__ = [
    'as_complex', 'sar_power', 'sar_amplitude_phase', 'to_db', 'pauli_rgb',
    'power_display', 'valid_power', 'power_db_values', 'scale_power', 'SARPower', 'SARAmplitudePhase',
    'SARLogScale', 'SARPauliRGB'
]
