"""Whole-scene inference: sliding windows, blending, streamed GeoTIFF/GeoJSON.

``RSInferencer`` is an mmengine ``BaseInferencer``: the model is built from the
config and loaded from the checkpoint by ``BaseInferencer._init_model``, the
collate function comes from ``_init_collate``, and our ``_init_pipeline``
returns the test pipeline with its loader replaced by a window reader
(:mod:`mmringmoe.apis.model_spec`). ``__call__`` is ours: a scene is not a
list of images, so instead of mapping the pipeline over inputs it maps it over
the windows of one scene and streams the result out.

How it differs from mmseg 1.2.2's ``mmseg.apis.RSInferencer``
(``remote_sense_inferencer.py``): that one reads and writes with GDAL's
``osgeo`` bindings (not installed here), runs segmentation only, writes each
window's class map into the half-overlap core of the window with no blending
and no nodata handling, and feeds the model raw window pixels through
``_preprare_data``. Ours reads with rasterio (any GDAL format, masks, complex
SAR), applies the model's own test pipeline to each window, blends the
overlapping windows' logits with weights falling off towards the window edge,
skips all-nodata windows and writes nodata where the input is nodata, keeps
only one band of window rows in memory, and serves segmentation, change
detection, depth, horizontal and oriented detection and scene classification
for every modality (opt, ms, sar_l1, sar_l2, opt + sar_l2).

Detections of all windows are merged by mmdet 3.3's own large-image merge,
``mmdet.utils.large_image.merge_results_by_nms`` (its ``shift_predictions``
moves each window's boxes by the window offset: horizontal boxes with
``sahi.slicing.shift_bboxes``, rotated ``(cx, cy, w, h, a)`` boxes with
mmdet's ``shift_rbboxes``; then ``mmcv.ops.batched_nms`` per class, with
``nms`` for horizontal and ``nms_rotated`` for rotated boxes, whose
class-offset trick mmcv applies to the centres of rotated boxes). Two steps
come before it:

- each window keeps only the objects whose centre lies in its core (the part
  of the window nearer its centre than any other window's,
  :func:`core_bounds`). NMS alone does not merge an object cut by a window
  border: the cut box and the whole box of the neighbouring window can have
  an IoU below any threshold (a ship cut to a fifth has IoU 0.2 with its
  whole box), so both would stay. With the core rule the object comes from
  the window that sees it whole (when the overlap is at least the object's
  size); NMS then merges what is left, e.g. copies of a large object seen
  by two windows whose centres round into both cores;
- horizontal boxes are clipped to their window (``HorizontalBoxes.clip_``,
  what mmdet's test-time box decoding does for one image), since sahi's
  ``BoundingBox`` refuses a negative coordinate.
"""
import copy
import logging
import os
import os.path as osp
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.infer import BaseInferencer

from mmringmoe.datasets.windows import Window, window_grid, window_starts
from .blending import RowBandAccumulator, window_weights
from .model_spec import ModelSpec, describe_model
from .scene import Scene, build_scene
from .writers import (ArrayBlockWriter, GeoTIFFBlockWriter,
                      check_output_path, detections_geojson, write_json)

DENSE_TASKS = ('segmentation', 'change_detection', 'depth')
CLASS_NODATA = 255
DEPTH_NODATA = -9999.0


class SceneResult(NamedTuple):
    """What :class:`RSInferencer` returns for one scene.

    Attributes:
        task (str): ``segmentation``, ``change_detection``, ``depth``,
            ``detection`` or ``classification``.
        pred: ``(H, W)`` uint8 classes (nodata 255) / float32 metres (nodata
            -9999) when no ``out`` was given (else None: read ``out``); for
            detection the GeoJSON dict; for classification the per-window
            class map ``(rows, cols)`` uint8.
        probs: ``(classes, H, W)`` float32 class probabilities (band ``i``
            is ``classes[i]``, softmax over the first axis) when asked and no
            ``out`` was given; for classification ``(1, rows, cols)``, the
            top class score of each window.
        crs (str | None): WKT of the scene (and output) CRS.
        transform (tuple | None): affine of ``pred`` (rasterio order).
        nodata: value marking nodata in ``pred``.
        out (str | None): the file written.
        classes (tuple[str]): class names; palette: their RGB colours.
        topk (list): ``[(class_name, score), ...]`` for classification.
        num_windows (int): windows in the grid; num_skipped: all-nodata ones.
        shape (tuple): ``(H, W)`` of the scene.
    """
    task: str
    pred: Any
    probs: Optional[np.ndarray]
    crs: Optional[str]
    transform: Optional[Tuple[float, ...]]
    nodata: Any
    out: Optional[str]
    classes: Tuple[str, ...]
    palette: Tuple[Tuple[int, int, int], ...]
    topk: Optional[List[Tuple[str, float]]]
    num_windows: int
    num_skipped: int
    shape: Tuple[int, int]


def _pair(v) -> Tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    return tuple(int(x) for x in v)


def core_bounds(starts: Sequence[int], size: int, length: int) -> List[int]:
    """Boundaries of the windows' cores along one axis: window ``i`` owns
    ``[b[i], b[i+1])``, split half-way through each overlap, so the cores
    partition ``[0, length)`` and every pixel has one owner window (used to
    keep each detection only from the window that sees it most centrally)."""
    b = [0]
    for s0, s1 in zip(starts[:-1], starts[1:]):
        b.append((s1 + s0 + size) / 2.0)
    b.append(float(length))
    return b


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record):
        return not str(record.getMessage()).startswith(self.prefix)


class InferenceNote(UserWarning):
    """Something the user should know about an output that is not an error
    (e.g. an input with a transform but no CRS gives an output without a
    CRS); ``tools/infer.py`` prints it as one ``note: ...`` line."""


def check_device(device) -> torch.device:
    """``torch.device(device)`` after checking it can be used here.

    Raises:
        ValueError: one line for a string torch does not parse, a device
            type other than ``cpu`` / ``cuda``, ``cuda`` without a usable
            GPU (``torch.cuda.is_available()`` False) or a GPU index past
            ``torch.cuda.device_count()``.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f'device {device!r} is not a device; expected '
                         "'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type not in ('cpu', 'cuda'):
        raise ValueError(f'device {device!r} has type {dev.type!r}; expected '
                         "'cpu', 'cuda' or 'cuda:N'")
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'device {device!r}: no CUDA GPU is usable on '
                             'this machine (torch.cuda.is_available() is '
                             "False); expected device 'cpu' here")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f'device {device!r}: this machine has {n} CUDA '
                             f'GPU(s), cuda:0 to cuda:{n - 1}')
    return dev


def check_positive(name: str, value, minimum: int = 1):
    """Refuse an integer option (``value`` or each of a pair) below
    ``minimum``, in one line naming ``name``.

    Raises:
        ValueError: ``{name} must be >= {minimum}`` (``> 0`` for 1) with the
            value found.
    """
    values = value if isinstance(value, (tuple, list)) else (value, )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) \
                or v < minimum:
            want = '> 0' if minimum == 1 else f'>= {minimum}'
            raise ValueError(f'{name} must be an integer {want}, got '
                             f'{value!r}')


RASTER_EXTS = ('.tif', '.tiff')
JSON_EXTS = ('.geojson', '.json')


def check_output_ext(out: str, task: str, topk_json: bool = False):
    """Refuse an output name whose extension is not what ``task`` writes:
    a GeoTIFF (``.tif`` / ``.tiff``) for segmentation, change detection,
    depth and the per-window class map of classification; GeoJSON
    (``.geojson`` / ``.json``) for detection; JSON (``.json``) for the top-k
    of a classification scene smaller than one window (``topk_json``).

    Raises:
        ValueError: one line naming ``out``, its extension and the expected
            ones.
    """
    if task in DENSE_TASKS or (task == 'classification' and not topk_json):
        exts, what = RASTER_EXTS, 'a GeoTIFF'
        if task == 'classification':
            what += ' (per-window class map)'
    elif task == 'classification':
        exts, what = ('.json', ), ('JSON (top-k classes: the scene is '
                                   'smaller than one window)')
    else:
        exts, what = JSON_EXTS, 'a GeoJSON FeatureCollection'
    ext = osp.splitext(out)[1]
    if ext.lower() not in exts:
        raise ValueError(f'output {out!r} has extension {ext or "none"!r} '
                         f'but a {task} model writes {what}: expected '
                         + ' or '.join(exts))


_ROLE_INPUTS = {
    ('img', ): 'one raster (INPUT)',
    ('date1', 'date2'): 'a change detection pair (INPUT INPUT2; API: '
                        '(date1, date2))',
    ('opt', 'sar_l2'): "an optical and a SAR-L2 raster (INPUT --sar SAR; "
                       "API: {'opt': ..., 'sar_l2': ...})",
}


def _input_roles(inputs) -> Tuple[List[str], List[str]]:
    """``(roles, names)`` :func:`build_scene` would give ``inputs``,
    without reading anything."""
    from .scene import RasterArray

    def name(x):
        if isinstance(x, RasterArray):
            return x.name
        if isinstance(x, (str, os.PathLike)):
            return os.fspath(x)
        if isinstance(x, dict) and 'name' in x:
            return str(x['name'])
        return '<array>'
    if isinstance(inputs, (tuple, list)) and not isinstance(inputs,
                                                            RasterArray):
        return (['date1', 'date2'][:len(inputs)] + ['?'] * (len(inputs) - 2),
                [name(x) for x in inputs])
    if isinstance(inputs, dict) and 'array' not in inputs:
        return [str(k) for k in inputs], [name(v) for v in inputs.values()]
    return ['img'], [name(inputs)]


class RSInferencer(BaseInferencer):
    """Apply a model to whole georeferenced scenes (module docstring).

    Args:
        config (str | Config): the model's config (ours or a toolbox config
            with ``mmringmoe.RingMoE`` swapped in).
        checkpoint (str, optional): weights; its ``meta['inference']`` gives
            modality, band order, normalisation statistics, classes, palette
            and test crop when present.
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
        stats (str, optional): per-modality statistics JSON (NormalizeRS
            layout) for checkpoints without ``meta['inference']['stats']``
            whose config's statistics file is not on this machine.

    Raises:
        FileNotFoundError, CheckpointError, ValueError: one line each (missing
            files, checkpoint lacking model weights, unknown model type).

    Example::

        inferencer = RSInferencer('cfg.py', 'model.pth')
        result = inferencer('scene.tif', out='scene_pred.tif', crop=512,
                            overlap=128, batch_size=4)
    """

    def __new__(cls, config=None, *args, **kwargs):
        # one entry point for every task: a tracking config (an mmdet MOT
        # model) gives an RSTrackInferencer (frames / video -> MOT txt)
        if cls is RSInferencer:
            from .track_inferencer import RSTrackInferencer, is_tracking_config
            if is_tracking_config(config):
                return super().__new__(RSTrackInferencer)
        return super().__new__(cls)

    def __init__(self, config, checkpoint: Optional[str] = None,
                 device: str = 'cpu', stats: Optional[str] = None,
                 scope: Optional[str] = None):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        import mmringmoe  # noqa: F401  (registers our classes)
        if isinstance(config, (str, os.PathLike)):
            if not osp.isfile(config):
                raise FileNotFoundError(f'config {config} does not exist')
            cfg = Config.fromfile(str(config))
        else:
            cfg = copy.deepcopy(config)
        if cfg.get('data_preprocessor') and \
                not cfg.model.get('data_preprocessor'):
            # what mmengine's Runner does with a top-level data_preprocessor
            cfg.model.data_preprocessor = cfg.data_preprocessor
        if checkpoint is not None and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
        from mmringmoe.engine.cli import import_scope
        import_scope(cfg)  # registers the config's toolbox (mmrotate too)
        scope = scope or cfg.get('default_scope', None) or 'mmringmoe'
        init_default_scope(scope)
        if stats is not None and not osp.isfile(stats):
            raise FileNotFoundError(f'statistics file {stats} (--stats, '
                                    'stats=) does not exist')
        self.device = check_device(device)
        self._stats_file = stats
        self._config_name = (osp.basename(str(config))
                             if isinstance(config, (str, os.PathLike))
                             else osp.basename(
                                 getattr(cfg, 'filename', None) or '')
                             or 'the config')
        self.checkpoint_meta: dict = {}
        super().__init__(model=cfg, weights=checkpoint, device=device,
                         scope=scope)
        self.device = torch.device(device)

    # -- BaseInferencer hooks ------------------------------------------------
    def _load_weights_to_model(self, model, checkpoint, cfg):
        if checkpoint is None:
            super()._load_weights_to_model(model, checkpoint, cfg)
            return
        from mmengine.runner.checkpoint import _load_checkpoint_to_model
        self.checkpoint_meta = dict(checkpoint.get('meta') or {})
        state = checkpoint.get('state_dict', checkpoint)
        state = {k[7:] if k.startswith('module.') else k: v
                 for k, v in state.items()}
        missing = [k for k in model.state_dict() if k not in state
                   and not k.endswith('num_batches_tracked')]
        if missing:
            raise ValueError(f'the checkpoint lacks {len(missing)} weight(s) '
                             f'of the model built from the config, e.g. '
                             f'{missing[:3]}: wrong config for this '
                             'checkpoint?')
        # every model weight is there (checked above); what mmengine would
        # print are buffers the backbone re-creates (Swin V2 position tables)
        quiet = logging.getLogger('mmringmoe.apis.load_state_dict')
        quiet.setLevel(logging.ERROR)
        _load_checkpoint_to_model(model, checkpoint, strict=False,
                                  logger=quiet)

    def _init_collate(self, cfg):
        """mmengine's, without its warning that the toolbox scope (mmseg,
        mmdet) has no function registry and mmengine's is used: that is
        where ``pseudo_collate`` and ``default_collate`` live."""
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        drop = _DropMessage('Failed to search registry with scope')
        logger.addFilter(drop)
        try:
            return super()._init_collate(cfg)
        finally:
            logger.removeFilter(drop)

    def _init_pipeline(self, cfg):
        from mmengine.dataset import Compose
        self.spec: ModelSpec = describe_model(
            self.model, cfg, self.checkpoint_meta, self._stats_file)
        info = self.checkpoint_meta.get('inference') or {}
        carried = sorted(set(info.get('stats') or {}) | set(
            info.get('dtype') or {}))
        if self._stats_file is not None and carried:
            import warnings
            warnings.warn(
                f'statistics file {self._stats_file} (--stats, stats=) '
                'replaces the normalisation statistics and sample dtype the '
                f'checkpoint carries for {", ".join(carried)} '
                "(meta['inference'])", InferenceNote, stacklevel=2)
        return Compose(list(self.spec.tail_cfg))

    def _note_small_crop(self, crop):
        """A note when ``crop`` is under half the model's own window on
        either side: each window then shows the model less context than it
        was tested with (Swin's windows and the decoder's receptive field
        see less), which can lower accuracy."""
        model_crop, source = self.spec.crop, self.spec.crop_source
        if source is None or not any(
                2 * c < m for c, m in zip(crop, model_crop)):
            return
        import warnings
        warnings.warn(
            f'--crop {crop[0]}x{crop[1]} (crop=) is under half the '
            f'{model_crop[0]}x{model_crop[1]} window the model was made '
            f'for ({source}); each window gives it less context than that',
            InferenceNote, stacklevel=3)

    def _init_visualizer(self, cfg):
        return None  # quick looks are drawn by mmringmoe.apis.quicklook

    def visualize(self, inputs, preds, **kwargs):
        return None

    def postprocess(self, preds, visualization, return_datasample=False,
                    **kwargs):
        return preds

    # -- one window ----------------------------------------------------------
    def _window_results(self, scene: Scene, arrays, valid, win: Window,
                        index: int) -> dict:
        self.spec.loader.check_values(arrays, valid, tuple(win))
        results = self.spec.loader(arrays)
        h, w = results['img'].shape[:2]
        results.update(
            img_path=scene.name, img_id=index, ori_shape=(h, w),
            img_shape=(h, w), pad_shape=(h, w), scale_factor=(1.0, 1.0),
            flip=False, flip_direction=None, reduce_zero_label=False,
            seg_fields=[], valid_mask=valid, crs=scene.crs,
            transform=win.transform(scene.transform), nodata=scene.nodata,
            window=tuple(win))
        results.setdefault('modality', self.spec.roles[0].modality)
        return self.pipeline(results)

    @torch.no_grad()
    def forward_windows(self, packed: List[dict], tta: Optional[str] = None):
        """Model outputs for packed windows: ``(B, C, h, w)`` float32 logits
        (depth: metres) for dense tasks, data samples otherwise. With
        ``tta`` (dense tasks: ``'flip'``, ``'flip4'``) each window's flips
        merged (:mod:`mmringmoe.apis.tta`): log mean probabilities (a
        sigmoid head: log-odds of the mean sigmoid), mean metres."""
        if tta is not None:
            from .tta import check_tta, flip_tta
            dirs = check_tta(tta, self.spec.task, DENSE_TASKS)
            return flip_tta(self._dense_forward, packed, dirs,
                            self.spec.task == 'depth').numpy()
        if self.spec.task in DENSE_TASKS:
            return self._dense_forward(packed).numpy()
        data = self.collate_fn(packed)
        data = self.model.data_preprocessor(data, False)
        return self.model.predict(data['inputs'], data['data_samples'])

    def _dense_forward(self, packed: List[dict]) -> torch.Tensor:
        """``encode_decode`` of packed windows: ``(B, C, h, w)`` float32 CPU
        logits (depth: metres)."""
        data = self.collate_fn(packed)
        data = self.model.data_preprocessor(data, False)
        metas = [s.metainfo for s in data['data_samples']]
        logits = self.model.encode_decode(data['inputs'], metas)
        return logits.float().cpu()

    # -- the scene loop ------------------------------------------------------
    def __call__(self, inputs, out: Optional[str] = None,
                 crop=None, overlap=None, batch_size: int = 4,
                 blend: str = 'cosine', blend_floor: float = 0.1,
                 probs: bool = False, overwrite: bool = False,
                 skip_nodata: bool = True, topk: int = 5,
                 progress=None, tta: Optional[str] = None,
                 bands: Optional[Sequence[int]] = None) -> SceneResult:
        """Run the model over a scene.

        Args:
            inputs: a raster path, ``np.ndarray``, ``RasterArray`` /
                ``dict(array=, transform=, crs=, nodata=)``; ``(date1,
                date2)`` for change detection; ``{modality: raster}`` for the
                optical + SAR-L2 models.
            out (str, optional): output file: GeoTIFF (``.tif``) for dense
                tasks and classification, GeoJSON for detection. None keeps
                the prediction in memory (``result.pred``).
            crop (int | (h, w)): window size; default the model's test crop
                (checkpoint meta, ``test_cfg.crop_size``, preprocessor size).
            overlap (int | (h, w)): overlap of neighbouring windows in pixels
                (stride = crop - overlap); default crop // 4.
            batch_size (int): windows per forward pass.
            blend (str): ``'cosine'``, ``'triangular'`` or ``'uniform'``
                (:mod:`mmringmoe.apis.blending`).
            blend_floor (float): smallest weight at a window edge, (0, 1].
            probs (bool): segmentation / change detection: also per-class
                probabilities (softmax of the blended logits), written to
                ``<out stem>_probs.tif`` (float32, nodata NaN).
            overwrite (bool): replace an existing ``out`` (never an input).
            skip_nodata (bool): skip windows without a valid pixel.
            topk (int): classification: classes reported for a scene
                smaller than one window.
            progress (callable, optional): ``progress(done, total)`` after
                every batch (the CLI's tqdm bar).
            tta (str, optional): flip test-time augmentation of segmentation,
                change detection and depth models: ``'flip'`` (as it is +
                horizontal flip, mmseg's TTA flip) or ``'flip4'`` (+ vertical
                and both); each window's flipped-back outputs are merged
                (mean probabilities as mmseg's ``SegTTAModel``, mean metres)
                before blending (:mod:`mmringmoe.apis.tta`). Costs one
                forward pass per flip.
            bands (sequence of int, optional): 1-based file band indexes
                to read, in the order the model reads them (GDAL's ``-b``
                convention, e.g. ``[4, 3, 2]`` for R, G, B of a 12-band
                Sentinel-2 L2A file for an ``opt`` model), for the one
                raster or both dates of a change pair; not for a
                ``{modality: raster}`` input. Windows are read with
                rasterio ``indexes``; the band count, dtype, alpha and
                declared-band-order checks, the model's own decoder and the
                quick look see the selected bands; the valid mask is GDAL's
                per-band masks of the selected bands only (a nodata value in
                an unselected band masks nothing; ``indexes`` of
                :func:`~mmringmoe.datasets.transforms.raster_io.\
read_raster_with_meta`).
                None (default) reads every data band as before.

        Returns:
            SceneResult

        Raises:
            ValueError: rasters of a pair / modality dict on different grids,
                a band count the model's modality does not have, ``out``
                equal to an input, bad crop/overlap, ``tta`` unknown or given
                for a detection / classification model; ``bands`` with an
                index < 1 or > the file's band count, repeated, not an
                integer, or selecting another band count than the model
                reads.
            FileExistsError: ``out`` exists and ``overwrite`` is False.
            FileNotFoundError: an input path that does not exist.

        Warns:
            InferenceNote: the scene has a transform but no CRS (so has the
                output), or no georeferencing at all; ``stats`` replaced
                the statistics the checkpoint carries (at construction).
        """
        # options first, before anything is read or written
        task = self.spec.task
        if tta is not None:
            from .tta import check_tta
            check_tta(tta, task, DENSE_TASKS)
        if crop is not None:
            check_positive('crop', crop)
        check_positive('batch_size', batch_size)
        if crop is not None:
            self._note_small_crop(_pair(crop))
        crop = _pair(crop) if crop is not None else self.spec.crop
        if overlap is None:
            overlap = (crop[0] // 4, crop[1] // 4)
        overlap = _pair(overlap)
        if any(o < 0 or o >= c for o, c in zip(overlap, crop)):
            raise ValueError(f'overlap {overlap} must lie in [0, crop) for '
                             f'crop {crop}')
        if out is not None and task != 'classification':
            check_output_ext(out, task)
        self._check_roles(inputs)
        scene = build_scene(inputs, bands=bands)
        self.spec.loader.check(scene)
        if out is not None:
            if task == 'classification':
                check_output_ext(out, task, scene.height <= crop[0]
                                 and scene.width <= crop[1])
            check_output_path(out, scene.paths, overwrite)
            if probs:
                check_output_path(self._probs_path(out), scene.paths,
                                  overwrite)
        if scene.transform is not None and scene.crs is None:
            import warnings
            warnings.warn(
                f'{scene.name} has a transform but no CRS (e.g. a world '
                'file without .prj / .aux.xml), so the output has a '
                'transform and no CRS', InferenceNote, stacklevel=2)
        elif out is not None and scene.paths and scene.transform is None \
                and scene.crs is None and not getattr(scene, 'gcps', None) \
                and not getattr(scene, 'rpcs', None):
            import warnings
            warnings.warn(
                f'{scene.name} has no georeferencing (no CRS, transform, '
                'GCPs or RPCs), so the output is in pixel coordinates',
                InferenceNote, stacklevel=2)
        stride = (crop[0] - overlap[0], crop[1] - overlap[1])
        if task == 'classification':
            return self._classify(scene, out, crop, batch_size, overwrite,
                                  skip_nodata, topk, progress)
        small = 'pad' if task != 'classification' else 'shrink'
        windows = window_grid(scene.height, scene.width, crop, stride,
                              small=small)
        if task in DENSE_TASKS:
            return self._dense(scene, windows, crop, out, batch_size, blend,
                               blend_floor, probs, overwrite, skip_nodata,
                               progress, tta)
        return self._detect(scene, windows, crop, stride, out, batch_size,
                            overwrite, skip_nodata, progress)

    def _check_roles(self, inputs):
        """Refuse inputs of another kind than the model reads (one raster,
        a date pair, optical + SAR-L2) in one line naming the model's task
        and config, what it takes and the files given, before any grid
        check between the files."""
        want = [r.role for r in self.spec.roles]
        roles, names = _input_roles(inputs)
        if roles == want or set(roles) == set(want):
            return
        takes = _ROLE_INPUTS.get(tuple(want), f'the rasters {want}')
        if 'sar_l2' in roles and 'sar_l2' not in want:
            given = 'a SAR-L2 raster (--sar) it has no input for'
        elif len(roles) > len(want):
            given = f'{len(roles)} rasters'
        else:
            given = _ROLE_INPUTS.get(tuple(roles), f'the rasters {roles}')
        raise ValueError(f'the {self.spec.task} model of '
                         f'{self._config_name} takes {takes}, but was given '
                         f'{given}: {", ".join(names)}')

    @staticmethod
    def _probs_path(out: str) -> str:
        stem, ext = osp.splitext(out)
        return f'{stem}_probs{ext or ".tif"}'

    def _batches(self, scene: Scene, windows: List[Window], batch_size: int,
                 skip_nodata: bool):
        """Yields ``(row_start, [(win, valid)], packed)``: the windows in
        row-major order (rows sorted, columns as given), in batches of
        ``batch_size`` that may span two window rows (as many forward calls
        as a plain batched forward over the windows; the blender closes a
        row when the first window of the next one is added), and each window
        without a valid pixel alone as ``(row_start, [(win, None)], None)``
        when ``skip_nodata``."""
        batch, packed = [], []
        index = 0
        for win in sorted(windows, key=lambda w: w.row_off):  # stable
            arrays, valid = scene.read(win)
            index += 1
            if skip_nodata and not valid.any():
                yield win.row_off, [(win, None)], None
                continue
            batch.append((win, valid))
            packed.append(self._window_results(scene, arrays, valid, win,
                                               index))
            if len(batch) == batch_size:
                yield batch[0][0].row_off, batch, packed
                batch, packed = [], []
        if batch:
            yield batch[0][0].row_off, batch, packed

    # -- segmentation, change detection, depth -------------------------------
    def _dense(self, scene, windows, crop, out, batch_size, blend,
               blend_floor, probs, overwrite, skip_nodata, progress,
               tta=None):
        task, spec = self.spec.task, self.spec
        H, W = scene.height, scene.width
        weights = window_weights(crop[0], crop[1], blend, blend_floor)
        is_depth = task == 'depth'
        writers = []
        head = getattr(self.model, 'decode_head', None)
        threshold = getattr(head, 'threshold', None) or 0.3
        if is_depth:
            dtype, nodata = np.float32, DEPTH_NODATA
            kw = dict(band_descriptions=['height (m)'],
                      tags=dict(units='metre', task=task))
        else:
            if len(spec.classes) > 255:
                raise ValueError(f'{len(spec.classes)} classes do not fit a '
                                 'uint8 class map with nodata 255')
            dtype, nodata = np.uint8, CLASS_NODATA
            cmap = {i: tuple(spec.palette[i]) + (255, )
                    for i in range(len(spec.classes))}
            cmap[CLASS_NODATA] = (0, 0, 0, 0)
            kw = dict(colormap=cmap, band_descriptions=['class'],
                      tags=dict(task=task, nodata_class=CLASS_NODATA,
                                **{f'CLASS_{i}': c
                                   for i, c in enumerate(spec.classes)}))
        geo = scene.georef()  # CRS, transform, GCPs, RPCs: on the scene grid
        if out is not None:
            writers.append(GeoTIFFBlockWriter(
                out, H, W, 1, dtype, nodata=nodata, overwrite=overwrite,
                **geo, **kw))
        else:
            writers.append(ArrayBlockWriter(H, W, 1, dtype, nodata=nodata))
        prob_writer = None
        if probs and not is_depth:
            n_cls = max(len(spec.classes), 2)
            if out is not None:
                prob_writer = GeoTIFFBlockWriter(
                    self._probs_path(out), H, W, n_cls, np.float32,
                    nodata=float('nan'), overwrite=overwrite,
                    band_descriptions=list(spec.classes), **geo)
            else:
                prob_writer = ArrayBlockWriter(H, W, n_cls, np.float32,
                                               nodata=np.nan)

        def emit(row0, values, wsum, valid):
            ok = valid & (wsum > 0)
            if is_depth:
                block = np.where(ok, values[0], DEPTH_NODATA).astype(
                    np.float32)[None]
            else:
                if values.shape[0] == 1:
                    t = torch.from_numpy(values)
                    p1 = torch.sigmoid(t)[0].numpy()
                    cls = (p1 > threshold).astype(np.uint8)
                    pr = np.stack([1 - p1, p1])
                else:
                    cls = values.argmax(0).astype(np.uint8)
                    pr = torch.softmax(torch.from_numpy(values),
                                       0).numpy() if prob_writer else None
                block = np.where(ok, cls, CLASS_NODATA).astype(np.uint8)[None]
                if prob_writer is not None:
                    prob_writer.write(row0, np.where(ok[None], pr, np.nan)
                                      .astype(np.float32))
            writers[0].write(row0, block)

        acc = None
        done = skipped = 0
        all_writers = writers + ([prob_writer] if prob_writer else [])
        try:
            for row_off, batch, packed in self._batches(
                    scene, windows, batch_size, skip_nodata):
                if packed is None:
                    skipped += 1
                    done += 1
                else:
                    logits = (self.forward_windows(packed) if tta is None
                              else self.forward_windows(packed, tta))
                    if acc is None:
                        acc = RowBandAccumulator(logits.shape[1], H, W,
                                                 crop[0], emit)
                    for (win, valid), lg in zip(batch, logits):
                        # windows come in row-major order: rows above the
                        # first one of a new window row are final
                        acc.finish_rows_before(win.row_off)
                        acc.add(win.row_off, win.col_off,
                                lg[:, :win.height, :win.width], weights,
                                valid)
                    done += len(batch)
                if progress is not None:
                    progress(done, len(windows))
            if acc is None:  # every window was nodata
                acc = RowBandAccumulator(1, H, W, crop[0], emit)
            acc.finish()
            for wr in all_writers:
                wr.close()
        except BaseException:
            for wr in all_writers:
                wr.abort()
            raise
        pred = None if out is not None else writers[0].array[0]
        prob_arr = None if (out is not None or prob_writer is None) \
            else prob_writer.array
        return SceneResult(task, pred, prob_arr, scene.crs, scene.transform,
                           nodata, out, spec.classes, spec.palette, None,
                           len(windows), skipped, (H, W))

    # -- detection -----------------------------------------------------------
    def _nms_cfg(self, rotated: bool) -> dict:
        tc = getattr(self.model, 'test_cfg', None) or {}
        nms = None
        for key in ('rcnn', 'rpn'):
            sub = tc.get(key) if hasattr(tc, 'get') else None
            if sub and sub.get('nms'):
                nms = dict(sub['nms'])
                break
        if nms is None and hasattr(tc, 'get') and tc.get('nms'):
            nms = dict(tc['nms'])
        if nms is None:
            nms = dict(type='nms_rotated' if rotated else 'nms',
                       iou_threshold=0.1 if rotated else 0.5)
        nms['type'] = 'nms_rotated' if rotated else 'nms'
        return nms

    def _detect(self, scene, windows, crop, stride, out, batch_size,
                overwrite, skip_nodata, progress):
        from mmdet.structures import DetDataSample
        from mmdet.structures.bbox import HorizontalBoxes
        from mmdet.utils.large_image import merge_results_by_nms
        from mmengine.structures import InstanceData
        H, W = scene.height, scene.width
        rb = core_bounds(window_starts(H, crop[0], stride[0], 'pad'),
                         crop[0], H)
        cb = core_bounds(window_starts(W, crop[1], stride[1], 'pad'),
                         crop[1], W)
        row_idx = {s: i for i, s in enumerate(
            window_starts(H, crop[0], stride[0], 'pad'))}
        col_idx = {s: i for i, s in enumerate(
            window_starts(W, crop[1], stride[1], 'pad'))}
        results, offsets = [], []  # kept objects per window, (x, y) offsets
        done = skipped = 0
        rotated = False
        for row_off, batch, packed in self._batches(scene, windows,
                                                    batch_size, skip_nodata):
            if packed is None:
                skipped += 1
                done += 1
            else:
                samples = self.forward_windows(packed)
                for (win, valid), sample in zip(batch, samples):
                    inst = sample.pred_instances
                    b = inst.bboxes
                    b = b.tensor if hasattr(b, 'tensor') else b
                    b = b.detach().float().cpu()
                    if b.numel() == 0:
                        continue
                    rotated = b.shape[1] == 5
                    if rotated:
                        cx, cy = b[:, 0], b[:, 1]
                    else:
                        hb = HorizontalBoxes(b.clone())
                        hb.clip_((win.height, win.width))
                        b = hb.tensor
                        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
                    # keep an object only from the window whose core holds
                    # its centre (module docstring), and not on nodata
                    i, j = row_idx[win.row_off], col_idx[win.col_off]
                    gx, gy = cx + win.col_off, cy + win.row_off
                    keep = ((gy >= rb[i]) & (gy < rb[i + 1]) & (gx >= cb[j])
                            & (gx < cb[j + 1]))
                    r = cy.long().clamp(0, valid.shape[0] - 1).numpy()
                    c = cx.long().clamp(0, valid.shape[1] - 1).numpy()
                    keep &= torch.from_numpy(valid[r, c].copy())
                    if not keep.any():
                        continue
                    results.append(DetDataSample(pred_instances=InstanceData(
                        bboxes=b[keep],
                        scores=inst.scores.detach().float().cpu()[keep],
                        labels=inst.labels.detach().cpu()[keep])))
                    offsets.append((win.col_off, win.row_off))
                done += len(batch)
            if progress is not None:
                progress(done, len(windows))
        if results:  # mmdet's large-image merge (module docstring)
            merged = merge_results_by_nms(results, offsets, (H, W),
                                          self._nms_cfg(rotated))
            inst = merged.pred_instances
            boxes_t, scores_t = inst.bboxes, inst.scores
            labels_t = inst.labels
        else:
            boxes_t = torch.zeros((0, 4))
            scores_t, labels_t = torch.zeros(0), torch.zeros(0, dtype=int)
        polys = box_polygons(boxes_t)
        fc = detections_geojson(polys, labels_t.numpy(), scores_t.numpy(),
                                self.spec.classes, scene.transform, scene.crs,
                                boxes_t.numpy(), gcps=scene.gcps,
                                gcp_crs=scene.gcp_crs, rpcs=scene.rpcs)
        if out is not None:
            write_json(out, fc, overwrite)
        return SceneResult('detection', fc, None, scene.crs, scene.transform,
                           None, out, self.spec.classes, self.spec.palette,
                           None, len(windows), skipped, (H, W))

    # -- scene classification ------------------------------------------------
    def _classify(self, scene, out, crop, batch_size, overwrite, skip_nodata,
                  topk, progress):
        H, W = scene.height, scene.width
        spec = self.spec
        if H <= crop[0] and W <= crop[1]:
            win = Window(0, 0, H, W)
            arrays, valid = scene.read(win)
            sample = self.forward_windows(
                [self._window_results(scene, arrays, valid, win, 0)])[0]
            score = sample.pred_score.float().cpu().numpy()
            order = np.argsort(-score)[:topk]
            top = [(spec.classes[i], float(score[i])) for i in order]
            if progress is not None:
                progress(1, 1)
            if out is not None:
                write_json(out, dict(topk=[dict(class_name=c, score=s)
                                           for c, s in top]), overwrite)
            return SceneResult('classification', None, None, scene.crs,
                               scene.transform, None, out, spec.classes,
                               spec.palette, top, 1, 0, (H, W))
        n_r, n_c = -(-H // crop[0]), -(-W // crop[1])
        cells = [Window(min(i * crop[0], max(H - crop[0], 0)),
                        min(j * crop[1], max(W - crop[1], 0)),
                        min(crop[0], H), min(crop[1], W))
                 for i in range(n_r) for j in range(n_c)]
        grid = np.full((n_r, n_c), CLASS_NODATA, np.uint8)
        score_grid = np.full((n_r, n_c), np.nan, np.float32)
        done = skipped = 0
        batch, packed, where = [], [], []

        def run():
            for (i, j), s in zip(where, self.forward_windows(packed)):
                sc = s.pred_score.float().cpu().numpy()
                grid[i, j] = int(sc.argmax())
                score_grid[i, j] = float(sc.max())

        for k, win in enumerate(cells):
            arrays, valid = scene.read(win)
            done += 1
            if skip_nodata and not valid.any():
                skipped += 1
            else:
                where.append(divmod(k, n_c))
                packed.append(self._window_results(scene, arrays, valid, win,
                                                   k))
            if len(packed) == batch_size or (k == len(cells) - 1 and packed):
                run()
                batch, packed, where = [], [], []
            if progress is not None:
                progress(done, len(cells))
        # one pixel per crop: transform scaled, GCPs and RPCs rescaled
        cell_geo = scene.georef(step=crop)
        cell_t = cell_geo['transform']
        if out is not None:
            cmap = {i: tuple(spec.palette[i]) + (255, )
                    for i in range(len(spec.classes))}
            wr = GeoTIFFBlockWriter(
                out, n_r, n_c, 1, np.uint8, **cell_geo,
                nodata=CLASS_NODATA, colormap=cmap, overwrite=overwrite,
                band_descriptions=['class'],
                tags=dict(task='classification', window=f'{crop[0]}x{crop[1]}',
                          **{f'CLASS_{i}': c
                             for i, c in enumerate(spec.classes)}))
            try:
                wr.write(0, grid[None])
                wr.close()
            except BaseException:
                wr.abort()
                raise
        return SceneResult('classification', grid, score_grid[None],
                           scene.crs, cell_t, CLASS_NODATA, out, spec.classes,
                           spec.palette, None, len(cells), skipped, (H, W))


def box_polygons(boxes: torch.Tensor) -> np.ndarray:
    """``(N, 4, 2)`` corner (x, y) pixel coordinates of horizontal ``(N, 4)``
    x1y1x2y2 boxes or rotated ``(N, 5)`` (cx, cy, w, h, angle in radians)
    boxes (mmrotate's ``rbox2qbox``)."""
    if boxes.shape[1] == 5:
        from mmrotate.structures.bbox import rbox2qbox
        return rbox2qbox(boxes).reshape(-1, 4, 2).numpy()
    x1, y1, x2, y2 = boxes.T.numpy()
    return np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1),
                     np.stack([x2, y2], -1), np.stack([x1, y2], -1)], 1)


__all__ = ['RSInferencer', 'SceneResult', 'InferenceNote', 'core_bounds',
           'box_polygons', 'check_device', 'check_output_ext',
           'check_positive']
