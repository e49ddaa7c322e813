"""``tools/test.py --show-dir``: a picture of every test image, any task,
any modality."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook

from mmringmoe.registry import HOOKS

#: loaders after which the display image is captured, and its layout
_LOADERS = {
    'LoadBitemporalImageFromFile': 'bitemporal',
    'LoadOptSARPair': 'modalities',
    'LoadRSImageFromFile': 'single',
    'LoadComplexSAR': 'single',
    'LoadImageFromFile': 'single',
}


def _datasets(dataset):
    """The datasets holding pipelines inside wrappers (Concat, Repeat...)."""
    if hasattr(dataset, 'pipeline'):
        return [dataset]
    out = []
    for sub in getattr(dataset, 'datasets', []) or []:
        out += _datasets(sub)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None:
        out += _datasets(inner)
    return out


def insert_capture(pipeline, percentiles=None) -> bool:
    """Insert :class:`CaptureDisplayImage` right after the image loader of an
    mmengine ``Compose`` and add its keys to the packing transform's
    ``meta_keys``. Returns False (pipeline untouched) when no known loader or
    packer is found at the top level (e.g. a video pipeline inside a
    ``TransformBroadcaster``); the hook then reads the file itself."""
    from mmringmoe.visualization.capture import (DISPLAY_KEYS,
                                                 CaptureDisplayImage)
    transforms = getattr(pipeline, 'transforms', None)
    if transforms is None or any(
            isinstance(t, CaptureDisplayImage) for t in transforms):
        return False
    at, pack = None, None
    for i, t in enumerate(transforms):
        name = type(t).__name__
        if at is None and name in _LOADERS:
            at = i
        if hasattr(t, 'meta_keys') and name.startswith('Pack'):
            pack = t
    if at is None or pack is None:
        return False
    loader = transforms[at]
    name = type(loader).__name__
    kwargs = dict(layout=_LOADERS[name])
    if percentiles is not None:
        kwargs['percentiles'] = percentiles
    if name == 'LoadImageFromFile':  # mmcv: BGR unless told otherwise
        kwargs['bgr'] = getattr(loader, 'channel_order', 'bgr') == 'bgr'
    if name == 'LoadOptSARPair' and getattr(loader, 'normalizers', None):
        kwargs['norm_stats'] = {
            m: n._stats_for({}) for m, n in loader.normalizers.items()}
    if name == 'LoadBitemporalImageFromFile':
        kwargs['modality'] = loader.modality
    transforms.insert(at + 1, CaptureDisplayImage(**kwargs))
    pack.meta_keys = tuple(pack.meta_keys) + tuple(
        k for k in DISPLAY_KEYS if k not in pack.meta_keys)
    return True


@HOOKS.register_module()
class RSVisualizationHook(Hook):
    """Paint the prediction of every ``interval``-th test image over the
    display image of its modality and write one PNG per image.

    Before testing, :class:`~mmringmoe.visualization.CaptureDisplayImage`
    is inserted after the image loader of the test pipeline, so each
    picture is made from the sample's own array (16-bit MS, complex SAR-L1,
    SAR-L2 amplitude, nodata) at ``ori_shape`` with
    :func:`~mmringmoe.visualization.display_image`. Without a capture
    (video pipelines) the file is read with ``read_raster`` (its own dtype
    and bands). The figure per task is made by
    :class:`~mmringmoe.visualization.PredictionPainter` (mmseg / mmdet /
    mmrotate visualizers underneath).

    Files: ``<out_dir>/<NNNNN>_<image name>.png``, ``NNNNN`` the running
    index of the test image (``r<rank>_`` first when distributed).

    Args:
        out_dir (str): Folder for the PNGs.
        interval (int): Paint test images 0, N, 2N, ... Defaults to 1.
        alpha (float): Opacity of class colours. Defaults to 0.5.
        score_thr (float): Boxes below are not drawn. Defaults to 0.3.
        min_size (int): Upscale small images to this short side (integer
            nearest-neighbour factor). Defaults to 256.
        draw_gt (bool): Also draw the ground truth. Defaults to True.
        percentiles (tuple, optional): Display stretch percentiles.
    """
    priority = 'LOW'

    def __init__(self, out_dir: str, interval: int = 1, alpha: float = 0.5,
                 score_thr: float = 0.3, min_size: int = 256,
                 draw_gt: bool = True,
                 percentiles: Optional[Sequence[float]] = None):
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.out_dir, self.interval = out_dir, interval
        self.alpha, self.score_thr = alpha, score_thr
        self.min_size, self.draw_gt = min_size, draw_gt
        self.percentiles = percentiles
        self._count = 0
        self._painter = None
        self.written = []

    def before_test(self, runner) -> None:
        from mmringmoe.visualization import PredictionPainter
        self._count = 0
        dataset = runner.test_loop.dataloader.dataset
        meta = {}
        for ds in _datasets(dataset):
            insert_capture(ds.pipeline, self.percentiles)
            meta = dict(getattr(ds, 'metainfo', {}) or {}, **meta)
        names = {type(t).__name__ for ds in _datasets(dataset)
                 for t in getattr(ds.pipeline, 'transforms', [])}
        meta['bitemporal'] = 'LoadBitemporalImageFromFile' in names
        self._painter = PredictionPainter(
            meta, alpha=self.alpha, score_thr=self.score_thr,
            min_size=self.min_size, draw_gt=self.draw_gt)
        os.makedirs(self.out_dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs=None) -> None:
        for sample in outputs or []:
            frames = getattr(sample, 'video_data_samples', None)
            for s in (frames if frames is not None else [sample]):
                if self._count % self.interval == 0:
                    self.written.append(self.paint_one(s, runner))
                self._count += 1

    def paint_one(self, sample, runner=None) -> str:
        """Write the figure of one output data sample; returns its path."""
        from mmringmoe.visualization import display_image
        meta = sample.metainfo
        displays = meta.get('display')
        valid = meta.get('display_valid_mask')
        if displays is None:
            from mmringmoe.datasets.transforms.raster_io import \
                read_raster_with_meta
            arr, geo = read_raster_with_meta(meta['img_path'])
            valid = geo.valid_mask
            kwargs = {} if self.percentiles is None else dict(
                percentiles=self.percentiles)
            displays = (display_image(arr, valid_mask=valid, **kwargs), )
        fig = self._painter.paint(sample, displays, valid)
        stem = osp.splitext(osp.basename(str(meta.get('img_path',
                                                      'image'))))[0]
        prefix = ''
        if runner is not None and runner.world_size > 1:
            prefix = f'r{runner.rank}_'
        path = osp.join(self.out_dir, f'{prefix}{self._count:05d}_{stem}.png')
        _write_png(path, fig)
        return path


def _write_png(path: str, rgb: np.ndarray) -> None:
    from PIL import Image
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    Image.fromarray(rgb).save(path, optimize=True)


def configure_show_dir(cfg, show_dir: str, interval: int = 1) -> None:
    """What ``tools/test.py --show-dir DIR --show-interval N`` does to the
    config: the toolbox's visualization hook is switched off (mmseg's draws
    every 50th image re-read as 8-bit RGB) and :class:`RSVisualizationHook`
    is added, for every task and scope.

    Raises:
        ValueError: ``interval`` < 1.
    """
    if interval < 1:
        raise ValueError(f'--show-interval must be >= 1, got {interval}')
    hooks = cfg.get('default_hooks', None)
    if hooks is not None and 'visualization' in hooks:
        hooks.pop('visualization')
    custom = list(cfg.get('custom_hooks', None) or [])
    custom = [h for h in custom if 'RSVisualizationHook' not in str(
        h.get('type', ''))]
    custom.append(dict(type='mmringmoe.RSVisualizationHook',
                       out_dir=show_dir, interval=interval))
    cfg.custom_hooks = custom


__all__ = ['RSVisualizationHook', 'configure_show_dir', 'insert_capture']
