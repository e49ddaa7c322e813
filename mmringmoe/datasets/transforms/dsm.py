"""Digital surface models as depth (height) targets (paper B.5.7)."""
import numpy as np
from mmcv.transforms import BaseTransform

from mmringmoe.registry import TRANSFORMS


def read_dsm(path):
    """Read a single-band float DSM (GeoTIFF via tifffile, else mmcv)."""
    try:
        if str(path).lower().endswith(('.tif', '.tiff')):
            import tifffile
            dsm = tifffile.imread(path)
        else:
            import mmcv
            dsm = mmcv.imread(path, flag='unchanged')
    except FileNotFoundError:
        raise FileNotFoundError(f'DSM not found: {path}')
    if dsm is None:
        raise FileNotFoundError(f'DSM not found or unreadable: {path}')
    dsm = np.squeeze(np.asarray(dsm))
    if dsm.ndim != 2:
        raise ValueError(f'DSM {path} must have one band, got shape '
                         f'{dsm.shape}')
    return dsm.astype(np.float32)


@TRANSFORMS.register_module()
class LoadDSMFromFile(BaseTransform):
    """Load ``depth_map_path`` (a DSM) into ``gt_depth_map`` (metres).

    ``reference='tile_min'`` turns absolute DSM elevations (Vaihingen lies at
    ~250-300 m above sea level) into heights above the tile's lowest valid
    point; relative error and delta accuracies are meaningless on absolute
    elevations. ``None`` keeps the raw values. Pixels that are NaN or below
    ``nodata_below`` are invalid and set to 0, which mmseg's ``SiLogLoss``
    and ``DepthMetric`` (``min_depth_eval``) exclude.

    Required keys: ``depth_map_path`` (and ``img`` for the shape check).
    Added keys: ``gt_depth_map`` (float32 H x W), ``depth_rescale_factor``;
    ``gt_depth_map`` is appended to ``seg_fields`` so mmseg's geometric
    transforms move it with the image.
    """

    def __init__(self, reference='tile_min', scale=1.0, nodata_below=-1e4):
        if reference not in ('tile_min', None):
            raise ValueError(f"reference must be 'tile_min' or None, got "
                             f'{reference!r}')
        self.reference = reference
        self.scale = scale
        self.nodata_below = nodata_below

    def transform(self, results):
        path = results['depth_map_path']
        dsm = read_dsm(path)
        valid = np.isfinite(dsm) & (dsm > self.nodata_below)
        if not valid.any():
            raise ValueError(f'DSM {path} has no valid pixel')
        if self.reference == 'tile_min':
            dsm = dsm - dsm[valid].min()
        dsm = np.where(valid, dsm * self.scale, 0).astype(np.float32)
        img = results.get('img')
        if img is not None and img.shape[:2] != dsm.shape:
            raise ValueError(
                f'DSM {path} is {dsm.shape} but its image '
                f'{results.get("img_path")} is {img.shape[:2]}')
        results['gt_depth_map'] = dsm
        results.setdefault('seg_fields', []).append('gt_depth_map')
        results['depth_rescale_factor'] = 1.0
        return results
