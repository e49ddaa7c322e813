"""Digital surface models as depth (height) targets (paper B.5.7)."""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS
from ..label_conventions import BINARY_CONVENTIONS, load_binary_label
from . import raster_io


def read_dsm_with_valid(path, backend_args=None
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Read a single-band DSM: ``(H, W)`` float32 metres and ``(H, W)`` bool
    validity (the file's declared nodata / mask band and non-finite values,
    when the raster reader reports them; NaN and Inf always).

    Integer and float32 DSMs are exact in float32; float64 DSMs are rounded
    to float32 (about 1e-4 m at 1000 m). Raises ``FileNotFoundError`` for a
    missing file and ``ValueError`` (naming the file, the shape found and
    the one expected) for a multi-band or complex raster.
    """
    reader = getattr(raster_io, 'read_raster_with_meta', None)
    try:
        if reader is not None:
            dsm, meta = reader(path, backend_args=backend_args)
            valid = getattr(meta, 'valid_mask', None)
        else:
            dsm, valid = raster_io.read_raster(path, backend_args), None
    except FileNotFoundError:
        raise FileNotFoundError(f'DSM not found: {path}')
    dsm = np.asarray(dsm)
    if dsm.ndim == 3 and dsm.shape[2] == 1:
        dsm = dsm[..., 0]
    if dsm.ndim != 2 or dsm.dtype.kind not in 'uif':
        raise ValueError(f'DSM {path}: found shape {dsm.shape} dtype '
                         f'{dsm.dtype}; expected one real-valued band (H, W).')
    finite = np.isfinite(dsm)
    valid = finite if valid is None else (np.asarray(valid, bool) & finite)
    return dsm.astype(np.float32), valid


def read_dsm(path):
    """Read a single-band DSM as ``(H, W)`` float32 (invalid pixels keep
    their file value; see :func:`read_dsm_with_valid` for the mask)."""
    return read_dsm_with_valid(path)[0]


@TRANSFORMS.register_module()
class LoadDSMFromFile(BaseTransform):
    """Load ``depth_map_path`` (a DSM) into ``gt_depth_map`` (metres).

    ``reference='tile_min'`` turns absolute DSM elevations (Vaihingen lies at
    ~250-300 m above sea level) into heights above the tile's lowest valid
    point, plus ``ground_offset`` (default 0.01 m, below a DSM's vertical
    accuracy): a target of 0 means *invalid* to mmseg's ``SiLogLoss`` and
    ``DepthMetric``, so without the offset every ground pixel at the tile
    minimum (often many on flat or quantised DSMs) would silently leave
    the loss and the metric. Relative error and delta accuracies are
    meaningless on absolute elevations. ``None`` keeps the raw values.

    A pixel is invalid, and its target set to 0 (which mmseg's
    ``SiLogLoss`` and ``DepthMetric`` (``min_depth_eval``) exclude), when:

    * the DSM declares it nodata (or masks it), or it is NaN / Inf;
    * its value is below ``nodata_below`` (DSMs that mark holes with
      -9999 without declaring it);
    * the input image marks it invalid (``results['valid_mask']`` False,
      from the image loader: declared nodata, mask band, NaN), when
      ``nodata_to_ignore``;
    * a validity mask file (``results[valid_key]``, with ``valid_key`` set)
      marks it 0 or ignore; its values are decoded with
      ``valid_convention`` (``'0/1'``, ``'0/255'``, ``'0/1/255'``,
      ``'0/255-jpeg'`` or ``'auto'``; 1 = valid).

    Required keys: ``depth_map_path`` (and ``img`` for the shape check).
    Added keys: ``gt_depth_map`` (float32 H x W, 0 where invalid),
    ``depth_rescale_factor``; ``gt_depth_map`` is appended to
    ``seg_fields`` so mmseg's geometric transforms move it with the image.
    """

    def __init__(self, reference='tile_min', scale=1.0, nodata_below=-1e4,
                 ground_offset: float = 0.01,
                 nodata_to_ignore=True, valid_key: Optional[str] = None,
                 valid_convention='auto'):
        if reference not in ('tile_min', None):
            raise ValueError(f"reference must be 'tile_min' or None, got "
                             f'{reference!r}')
        if valid_convention not in BINARY_CONVENTIONS + ('auto', ):
            raise ValueError(f'valid_convention must be one of '
                             f'{BINARY_CONVENTIONS + ("auto", )}, got '
                             f'{valid_convention!r}')
        if ground_offset <= 0 and reference == 'tile_min':
            raise ValueError('ground_offset must be > 0 with reference='
                             "'tile_min' (a 0 target counts as invalid)")
        self.reference = reference
        self.ground_offset = float(ground_offset)
        self.scale = scale
        self.nodata_below = nodata_below
        self.nodata_to_ignore = nodata_to_ignore
        self.valid_key = valid_key
        self.valid_convention = valid_convention

    def transform(self, results):
        path = results['depth_map_path']
        dsm, valid = read_dsm_with_valid(path)
        valid &= dsm > self.nodata_below
        img = results.get('img')
        if img is not None and img.shape[:2] != dsm.shape:
            raise ValueError(
                f'DSM {path} is {dsm.shape} but its image '
                f'{results.get("img_path")} is {img.shape[:2]}')
        if self.nodata_to_ignore and results.get('valid_mask') is not None:
            img_valid = np.asarray(results['valid_mask'], bool)
            if img_valid.shape != dsm.shape:
                raise ValueError(
                    f'valid_mask of {results.get("img_path")} is '
                    f'{img_valid.shape} but DSM {path} is {dsm.shape}')
            valid &= img_valid
        if self.valid_key is not None:
            vpath = results[self.valid_key]
            flag = load_binary_label(vpath, self.valid_convention, 255)
            if flag.shape != dsm.shape:
                raise ValueError(f'validity mask {vpath} is {flag.shape} but '
                                 f'DSM {path} is {dsm.shape}')
            valid &= flag == 1
        if not valid.any():
            raise ValueError(f'DSM {path} has no valid pixel')
        if self.reference == 'tile_min':
            dsm = dsm - dsm[valid].min()
        dsm = dsm * self.scale
        if self.reference == 'tile_min':
            dsm = dsm + self.ground_offset
        dsm = np.where(valid, dsm, 0).astype(np.float32)
        results['gt_depth_map'] = dsm
        results.setdefault('seg_fields', []).append('gt_depth_map')
        results['depth_rescale_factor'] = 1.0
        return results
