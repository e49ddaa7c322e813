"""What a model needs from a scene, read from its config and checkpoint.

:func:`describe_model` turns a config (ours or a stock mmseg / mmdet /
mmrotate / mmpretrain one with ``mmringmoe.RingMoE`` swapped in) plus the
checkpoint's ``meta`` into a :class:`ModelSpec`: the task, the rasters the
model reads (role, modality, band count, band order), the loader of its test
pipeline replaced by a window reader (:class:`WindowLoader`), and the rest of
the test pipeline kept as it is, so normalisation is exactly the model's own
(``NormalizeRS`` statistics in the pipeline, or ``data_preprocessor``
mean/std applied by the model).

Checkpoint ``meta['inference']`` (written by
:class:`mmringmoe.engine.hooks.InferenceMetaHook` and the converters) may
carry ``modalities``, ``band_order``, ``stats`` ({modality: {mean, std}}),
``dtype`` ({modality: sample dtype of the training data}), ``classes``,
``palette`` and ``test_crop``; ``meta['dataset_meta']`` (mmengine) classes
and palette. A statistics file named by the config that does not exist here
is replaced by those statistics, or by ``--stats``.

The sample dtype the model was trained on (:func:`model_dtypes`: the test
pipeline's ``LoadImageFromFile``, which decodes 8-bit images; else the
``dtype`` of a ``--stats`` file; else ``meta['inference']['dtype']``; else
the ``dtype`` of the config's statistics file) is compared with each scene
raster's dtype by :meth:`WindowLoader.check`: a different kind or bit depth
(:func:`sample_kind`: 8-bit vs 16-bit integers vs floats) is refused in one
line, since normalisation statistics of one scale applied to data of another
give a confident, wrong map. When no source says the dtype (older
checkpoints) an :class:`InferenceWarning` says the check was not made.
"""
import copy
import json
import os.path as osp
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mmringmoe.datasets.transforms.raster_io import (MODALITY_CHANNELS,
                                                     SAR_L1_CHANNEL_NAMES,
                                                     complex_to_channels,
                                                     sample_kind)

#: Band order each modality expects (DESIGN.md section 3).
DEFAULT_BAND_ORDER = dict(
    opt=('red', 'green', 'blue'),
    ms=('blue', 'green', 'red', 'nir'),
    sar_l1=SAR_L1_CHANNEL_NAMES,
    sar_l2=('amplitude', ))

_CV2_LOADERS = ('LoadImageFromFile', 'LoadImageFromNDArray')
_DROP_ALWAYS = ('LoadAnnotations', 'LoadSegAnnotations', 'LoadChangeLabel',
                'LoadDSMFromFile', 'LoadDepthAnnotation', 'ConvertBoxType',
                'NodataToIgnore', 'LoadPanopticAnnotations', 'FilterAnnotations',
                'LoadTrackAnnotations')
# geometric test-time steps: windows are fed at the scene's own resolution
_DROP_DENSE = ('Resize', 'RSResize', 'RandomResize', 'RandomFlip',
               'RSRandomFlip', 'TestTimeAug', 'RandomCrop', 'CenterCrop',
               'ResizeEdge', 'Pad', 'FixScaleResize', 'RandomChoiceResize')


class InferenceWarning(UserWarning):
    """A check scene inference could not make (e.g. the checkpoint does not
    say which sample dtype the model was trained on); ``tools/infer.py``
    prints it as one ``warning: ...`` line."""


def _short(type_name: str) -> str:
    return str(type_name).split('.')[-1]


class ModelDtype(NamedTuple):
    """The sample dtype a model was trained on, and where that was read."""
    dtype: str
    reason: str   # completes 'the model ...' in the refusal


def _decodes_8_bit(step: dict) -> bool:
    """mmcv's ``LoadImageFromFile`` decodes 8-bit images (cv2 / pillow /
    turbojpeg with a ``color`` or ``grayscale`` colour type convert 16-bit
    files to 8 bits); ``color_type='unchanged'`` and the tifffile backend
    keep the file's dtype."""
    return (_short(step.get('type', '')) == 'LoadImageFromFile'
            and step.get('color_type', 'color') != 'unchanged'
            and step.get('imdecode_backend', 'cv2') != 'tifffile')


def _stats_dtype(stats: Optional[dict], modality: str) -> Optional[str]:
    entry = (stats or {}).get(modality)
    if isinstance(entry, dict) and entry.get('dtype'):
        return str(entry['dtype'])
    return None


def model_dtypes(load: dict, roles, meta: dict,
                 stats_file: Optional[str] = None,
                 stats: Optional[dict] = None,
                 config_stats: Sequence[str] = ()) -> Dict[str, ModelDtype]:
    """``{modality: ModelDtype}`` for the modalities whose training sample
    dtype is known (module docstring; modalities left out are unknown).

    Args:
        load (dict): the test pipeline's loader step.
        roles: the model's :class:`InputRole` s.
        meta (dict): checkpoint meta.
        stats_file (str, optional): the ``--stats`` file, ``stats`` its
            contents.
        config_stats: statistics files named by the test pipeline.
    """
    info = meta.get('inference') or {}
    ckpt = info.get('dtype') or {}
    found = {}
    for m in dict.fromkeys(r.modality for r in roles):
        if _decodes_8_bit(load):
            found[m] = ModelDtype(
                'uint8', "'s test pipeline reads 8-bit images "
                '(LoadImageFromFile)')
            continue
        if stats_file is not None and _stats_dtype(stats, m):
            found[m] = ModelDtype(
                _stats_dtype(stats, m), f' was trained on '
                f'{_stats_dtype(stats, m)} samples (statistics file '
                f'{stats_file!r}, --stats)')
            continue
        if ckpt.get(m):
            found[m] = ModelDtype(
                str(ckpt[m]), f' was trained on {ckpt[m]} samples (checkpoint '
                "meta['inference']['dtype'])")
            continue
        for path in config_stats:
            if osp.isfile(path):
                with open(path) as f:
                    dt = _stats_dtype(json.load(f), m)
                if dt:
                    found[m] = ModelDtype(dt, f' was trained on {dt} samples '
                                          f'(statistics file {path!r})')
                    break
    return found


class InputRole(NamedTuple):
    role: str          # 'img', 'opt', 'sar_l2', 'date1', 'date2'
    modality: str      # 'opt', 'ms', 'sar_l1', 'sar_l2'
    channels: int      # bands the model reads from this raster


class ModelSpec(NamedTuple):
    task: str                     # segmentation, change_detection, depth,
    #                               detection, classification
    roles: Tuple[InputRole, ...]
    loader: Any                   # WindowLoader
    tail_cfg: List[dict]          # test pipeline after the loader
    classes: Tuple[str, ...]
    palette: Tuple[Tuple[int, int, int], ...]
    crop: Tuple[int, int]
    band_order: Dict[str, Tuple[str, ...]]
    #: where ``crop`` comes from (e.g. ``"the config's model.test_cfg.
    #: crop_size"``); None for the 512 x 512 used when nothing gives one
    crop_source: Optional[str] = None


def find_test_pipeline(cfg) -> List[dict]:
    """The test (else val) pipeline of a config."""
    for key in ('test_dataloader', 'val_dataloader'):
        dl = cfg.get(key)
        if not dl:
            continue
        found = _find_pipeline(dl.get('dataset', {}))
        if found:
            return copy.deepcopy(list(found))
    for key in ('test_pipeline', 'val_pipeline'):
        if cfg.get(key):
            return copy.deepcopy(list(cfg[key]))
    raise ValueError('the config has no test_dataloader.dataset.pipeline '
                     'or test_pipeline to take the preprocessing from')


def _find_pipeline(ds):
    if isinstance(ds, dict):
        if ds.get('pipeline'):
            return ds['pipeline']
        for key in ('dataset', 'datasets'):
            if key in ds:
                found = _find_pipeline(ds[key])
                if found:
                    return found
    if isinstance(ds, (list, tuple)):
        for d in ds:
            found = _find_pipeline(d)
            if found:
                return found
    return None


def detect_task(model) -> str:
    """Task of a built model from its base classes."""
    from mmseg.models.segmentors import BaseSegmentor
    try:
        from mmseg.models import DepthEstimator
    except ImportError:  # pragma: no cover
        DepthEstimator = ()
    from mmringmoe.models.change_detection import SiameseEncoderDecoder
    if isinstance(model, SiameseEncoderDecoder):
        return 'change_detection'
    if DepthEstimator and isinstance(model, DepthEstimator):
        return 'depth'
    if isinstance(model, BaseSegmentor):
        return 'segmentation'
    from mmdet.models.detectors import BaseDetector
    if isinstance(model, BaseDetector):
        return 'detection'
    try:
        from mmpretrain.models import ImageClassifier
        if isinstance(model, ImageClassifier):
            return 'classification'
    except ImportError:  # pragma: no cover
        pass
    raise ValueError(f'scene inference does not know the model type '
                     f'{type(model).__name__} (segmentation, change '
                     'detection, depth, detection and classification models '
                     'are supported)')


def _backbone_modalities(cfg) -> Tuple[str, ...]:
    bb = cfg.model.get('backbone', {}) or {}
    mods = bb.get('modalities')
    return tuple(mods) if mods else ()


def _layout_hint(src, bands: int) -> str:
    """For an in-memory array whose first axis has ``bands`` entries and
    whose last does not: the hint that it is rasterio's (bands, rows, cols)
    layout (``RasterArray`` takes (rows, cols, bands)); else ''."""
    arr = getattr(src, '_arr', None)
    if getattr(src, 'path', None) is not None or arr is None or \
            arr.ndim != 3 or arr.shape[0] != bands or arr.shape[2] == bands:
        return ''
    return (f'; its shape {tuple(arr.shape)} looks like (bands, rows, cols) '
            "as rasterio's read() gives; RasterArray takes (rows, cols, "
            'bands): pass arr.transpose(1, 2, 0)')


def _stats_from(meta: dict, stats_file: Optional[str]) -> Optional[dict]:
    if stats_file is not None:
        if not osp.isfile(stats_file):
            raise FileNotFoundError(f'statistics file {stats_file} '
                                    '(--stats, stats=) does not exist')
        try:
            with open(stats_file) as f:
                return json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f'statistics file {stats_file} (--stats, '
                             f'stats=) is not JSON: {e}') from None
    stats = (meta.get('inference') or {}).get('stats')
    return dict(stats) if stats else None


def _resolve_stats_files(steps: List[dict], stats: Optional[dict]):
    """Replace ``stats_file`` entries whose file is missing (or every one
    when ``stats`` was given explicitly) by the statistics themselves."""
    for t in steps:
        path = t.get('stats_file')
        if path is None:
            continue
        if stats is not None:
            t.pop('stats_file')
            t['stats'] = stats
        elif not osp.isfile(path):
            raise FileNotFoundError(
                f'the config\'s statistics file {path!r} (used by '
                f'{t["type"]}) does not exist and the checkpoint carries no '
                'normalisation statistics (meta["inference"]["stats"]); pass '
                'them with --stats FILE (stats=...)')


#: GDAL's colour interpretation of a 3- or 4-band 8-bit file written with
#: its defaults (PHOTOMETRIC=RGB): it says nothing about what the bands hold
#: (a B, G, R, NIR file gets it too), so only another one counts as declared
_GDAL_DEFAULT_COLOURS = ('red', 'green', 'blue')


def declared_band_names(path: str, count: int, alpha: Optional[int] = None,
                        vocabulary: Sequence[str] = ()
                        ) -> Tuple[Tuple[Optional[str], str], ...]:
    """What a raster file says its data bands hold, per band in file order
    (a band flagged ``alpha``, 1-based, left out unless ``count`` includes
    it): ``(name, source)`` with ``name`` lower case, or ``(None, '')``.

    A band description (``gdalinfo``'s ``Description``, rasterio's
    ``descriptions``) counts when it gives a band name
    (:func:`.band_names.band_name`: one of ``vocabulary``, the band names of
    :data:`DEFAULT_BAND_ORDER` and the model's, case-insensitive, or a name
    such as ``Blue (B2)``, ``Near infrared``, ``Red Edge 1``; sensor
    designations such as ``B2`` are read by
    :meth:`WindowLoader.check_declared_order`); else
    GDAL's colour interpretation red / green / blue counts, unless the
    file's colour bands are GDAL's default red, green, blue in bands 1-3,
    which GDAL gives every 3- or 4-band 8-bit GeoTIFF written with its
    defaults whatever the bands hold. Files GDAL does not open (``.npy``)
    declare nothing.
    """
    import rasterio
    from rasterio.enums import ColorInterp
    if path is None or path.lower().endswith('.npy'):
        return ()
    vocabulary = {str(v).lower() for v in vocabulary}
    colours = {ColorInterp.red: 'red', ColorInterp.green: 'green',
               ColorInterp.blue: 'blue'}
    with rasterio.open(path) as ds:
        indexes = [i for i in range(1, ds.count + 1)
                   if i != alpha or count == ds.count]
        interp = [colours.get(ds.colorinterp[i - 1]) for i in indexes]
        descriptions = [(ds.descriptions[i - 1] or '').strip().lower()
                        for i in indexes]
    coloured = [c for c in interp if c]
    default = tuple(interp[:3]) == _GDAL_DEFAULT_COLOURS and \
        len(coloured) == 3
    from .band_names import band_name
    out = []
    for desc, colour in zip(descriptions, interp):
        name = band_name(desc, vocabulary)
        if name is not None and colour and not default and colour != name:
            # the file contradicts itself: matches no band order
            out.append((f'{name} (colour interpretation {colour})',
                        'colour interpretation, which disagrees with the '
                        'description'))
        elif name is not None:
            out.append((name, 'band description'))
        elif colour and not default:
            out.append((colour, 'colour interpretation'))
        else:
            out.append((None, ''))
    return tuple(out)


def _other_signedness(file_dtype: str, model_dtype: str) -> bool:
    """Integers of the same width, one signed and one unsigned."""
    try:
        a, b = np.dtype(str(file_dtype)), np.dtype(str(model_dtype))
    except TypeError:  # complex_int16 and other GDAL-only names
        return False
    return a.kind in 'iu' and b.kind in 'iu' and a.kind != b.kind and \
        a.itemsize == b.itemsize


def band_descriptions(path: str) -> Tuple[str, ...]:
    """Every band's GDAL description (``''`` when unset), in file order."""
    import rasterio
    with rasterio.open(path) as ds:
        return tuple(d or '' for d in ds.descriptions)


def _grouped(readings: Dict[str, tuple]) -> Dict[str, tuple]:
    """Sensor readings that give the same names joined: ``{'Sentinel-2 /
    Landsat 8-9': (...), 'Landsat 4-7': (...)}``."""
    out: Dict[tuple, List[str]] = {}
    for sensor, names in readings.items():
        out.setdefault(names, []).append(sensor)
    return {' / '.join(sensors): names for names, sensors in out.items()}


def _pick_bands(every, descriptions, order, readings) -> Dict[str, List[int]]:
    """1-based file band indexes holding the model's bands in its order,
    searched over every band of the file: ``{'': pick}`` from band names,
    else per sensor reading (names, and designations read as that sensor's;
    readings giving the same pick joined: ``{'Sentinel-2 / Landsat 8-9':
    [4, 3, 2], 'Landsat 4-7': [3, 2, 1]}``); ``{}`` when none has them
    all."""
    from .band_names import SENSOR_BANDS, designation

    def pick(names):
        if all(names.count(b) == 1 for b in order):
            return [names.index(b) + 1 for b in order]
        return None
    plain = pick([name for name, _ in every])
    if plain is not None or not any(readings):
        return {'': plain} if plain is not None else {}
    found: Dict[tuple, List[str]] = {}
    for sensor in readings:
        table = SENSOR_BANDS[sensor]
        names = []
        for (name, _), desc in zip(every, descriptions):
            d = designation(desc) if name is None else None
            names.append(table.get(d.number) if d else name)
        p = pick(names)
        if p is not None:
            found.setdefault(tuple(p), []).append(sensor)
    return {' / '.join(sensors): list(p) for p, sensors in found.items()}


class WindowLoader:
    """Stands in for the test pipeline's loader: turns the arrays read for a
    window into the results dict that loader would have produced.

    Kinds: ``'cv2'`` (``LoadImageFromFile``: 8-bit, 3 bands in BGR order, as
    cv2 decodes them), ``'rs'`` (``LoadRSImageFromFile``: file order and
    dtype), ``'complex_sar'`` (``LoadComplexSAR``: 8 real channels),
    ``'opt_sar'`` (``LoadOptSARPair``: optical + SAR-L2, each normalised by
    the loader's own ``NormalizeRS``) and ``'bitemporal'``
    (``LoadBitemporalImageFromFile``: the two dates stacked).

    For mmcv's ``LoadImageFromFile`` / ``LoadImageFromNDArray`` (any kind,
    also a change detection pair, each date as the loader reads it, and
    tracking frames) every raster's bands are put in the order that loader
    yields (:func:`.decoding.mmcv_band_order`: BGR for ``color`` and
    ``unchanged`` with cv2 / pillow, the stored order with ``tifffile``);
    a file whose loader output is no band order of it (a colour file read
    ``grayscale``) is refused by :meth:`check_bands`. A 1-band result is
    ``(H, W, 1)`` where the loader gives ``(H, W)`` (the Pack steps of
    mmseg / mmdet / mmpretrain make both ``(1, H, W)``).
    """

    def __init__(self, kind: str, cfg: dict, roles: Tuple[InputRole, ...],
                 stats: Optional[dict] = None):
        self.kind, self.cfg, self.roles = kind, dict(cfg), roles
        self.to_float32 = bool(cfg.get('to_float32', False))
        #: mmcv's loader: bands in its order (.decoding.mmcv_band_order)
        self.mmcv = _short(cfg.get('type', '')) in _CV2_LOADERS
        #: {modality: band names in the model's order}, set by
        #: :func:`describe_model` (:meth:`check_declared_order`)
        self.band_order: Dict[str, Tuple[str, ...]] = {}
        #: {modality: ModelDtype} (:func:`model_dtypes`), set by
        #: :func:`describe_model`; a modality left out is unknown
        self.dtypes: Dict[str, ModelDtype] = {}
        self.pair = None
        if kind == 'opt_sar':
            from mmringmoe.datasets.seg_transforms import LoadOptSARPair
            from mmringmoe.datasets.transforms import NormalizeRS
            self.pair = LoadOptSARPair(**{k: v for k, v in cfg.items()
                                          if k in ('opt_bands', 'sar_band')})
            chosen = stats
            if chosen is None and cfg.get('stats_file'):
                step = dict(type=cfg['type'], stats_file=cfg['stats_file'])
                _resolve_stats_files([step], None)  # raises when missing
                with open(cfg['stats_file']) as f:
                    chosen = json.load(f)
            if chosen is not None:
                self.pair.normalizers = {
                    m: NormalizeRS(stats=chosen, modality=m)
                    for m in ('opt', 'sar_l2')}

    def check(self, scene):
        """One-line errors for rasters the model cannot read: a missing
        raster, a band count the modality does not have, a sample dtype of
        another kind or bit depth than the training data's
        (:meth:`check_dtype`); then :meth:`decode_as_loader`."""
        self.check_bands(scene)
        #: {role: (file dtype, model dtype)} of same-width integers of other
        #: signedness, whose windows :meth:`check_values` checks
        self.sign_checks = {}
        for role in self.roles:
            src = scene.sources[role.role]
            self.check_dtype(src, role.modality)
            known = self.dtypes.get(role.modality)
            if known is not None and _other_signedness(src.dtype,
                                                       known.dtype):
                self.sign_checks[role.role] = (src, role.modality, known)
            self.check_declared_order(src, role.modality)
        self.decode_as_loader(scene)

    def check_values(self, arrays: Dict[str, np.ndarray], valid: np.ndarray,
                     window: Tuple[int, int, int, int]):
        """Refuse a window whose valid values the model's training dtype
        cannot hold, for rasters of the other signedness at the same width
        (:func:`sample_kind` lets int16 / uint16 DN pass, as they share a
        scale where the values are those of the training data): a negative
        value in an int8 / int16 scene for a model trained on uint8 /
        uint16, or a value above the signed maximum for the reverse. Called
        for every window before it goes to the model.

        Args:
            arrays: ``{role: (h, w, C) array}`` as read for the window.
            valid: ``(h, w)`` bool, the window's valid pixels.
            window: ``(row_off, col_off, height, width)``, for the message.

        Raises:
            ValueError: one line naming the file, the window, the value
                found and the model's dtype.
        """
        for role, (src, modality, known) in getattr(
                self, 'sign_checks', {}).items():
            arr = arrays[role]
            values = arr[valid] if arr.shape[:2] == valid.shape else arr
            if values.size == 0:
                continue
            info = np.iinfo(np.dtype(known.dtype))
            lo, hi = values.min(), values.max()
            if lo >= info.min and hi <= info.max:
                continue
            bad = lo if lo < info.min else hi
            raise ValueError(
                f'{src.name!r} holds {src.dtype} values down to {lo} and up '
                f'to {hi} in window (row {window[0]}, col {window[1]}, '
                f'{window[2]} x {window[3]}), but the model{known.reason}, '
                f'for modality {modality!r}, whose values lie in '
                f'[{info.min}, {info.max}] ({bad} does not); convert the '
                f'scene to {known.dtype} the way the training data were')

    def check_declared_order(self, src, modality: str):
        """Refuse a file whose own band names (:func:`declared_band_names`)
        contradict the model's band order (``self.band_order``, from the
        checkpoint's ``meta['inference']``, set by :func:`describe_model`):
        e.g. a B, G, R GeoTIFF that says so, given to a model trained on
        R, G, B, which would otherwise run on swapped bands without a word.
        Bands that declare nothing are not checked.

        Bands described by a sensor band designation (``B2``, ``B02``,
        ``SR_B4``; :mod:`.band_names`) are read in every sensor numbering
        that has them (Sentinel-2, Landsat 8-9, Landsat 4-7): the file is
        refused when every reading contradicts the model's order, and one
        :class:`InferenceWarning` says which reading was assumed when the
        readings disagree (``B4, B3, B2``: red, green, blue for Sentinel-2
        and Landsat 8-9, NIR, red, green for Landsat 4-7).

        Raises:
            ValueError: one line naming the file, what its bands declare
                (with a band selection, the SELECTED bands' names), the
                model's order and the 1-based file band indexes that would
                fit (``--bands`` / ``bands=``), searched over every band of
                the file.
        """
        from .band_names import (designation, designation_readings,
                                 is_generic)
        order = tuple(str(b).lower() for b in
                      (self.band_order or {}).get(modality, ()))
        if src.path is None or not order or src.count != len(order) or \
                (self.kind == 'opt_sar' and self.cfg.get('opt_bands')) or \
                (self.kind == 'opt_sar' and modality == 'sar_l2'
                 and self.cfg.get('sar_band') is not None):
            return
        vocabulary = {b.lower() for names in DEFAULT_BAND_ORDER.values()
                      for b in names} | set(order)
        selected = getattr(src, 'bands', None)
        # alpha None: every band of the file, whatever the count
        every = declared_band_names(src.path, src.file_count, None,
                                    vocabulary)
        if selected is not None:  # the names of the selected bands
            files = list(selected)
        else:
            files = [i for i in range(1, src.file_count + 1)
                     if i != src.alpha or src.count == src.file_count]
        # the alpha band is never a colour, so GDAL's default-colour rule
        # reads the same with it or without it: one read of the file serves
        if not every:  # a file GDAL does not open (.npy) declares nothing
            return
        declared = tuple(every[i - 1] for i in files)
        if len(declared) != len(order):
            return
        descriptions = band_descriptions(src.path)
        designated = [designation(descriptions[i - 1]) if name is None
                      else None for i, (name, _) in zip(files, declared)]
        # the sensors whose numbering has EVERY designation of the file (a
        # 12-band B1..B12 file can only be Sentinel-2), read on these bands
        whole = designation_readings([
            designation(d) if name is None else None
            for d, (name, _) in zip(descriptions, every)]) \
            if any(designated) else {}
        readings = {sensor: tuple(
            name if name is not None else names[i - 1]
            for i, (name, _) in zip(files, declared))
            for sensor, names in whole.items()}
        if not readings:  # names only (or nothing): one reading
            designated = [None] * len(files)
            readings = {'': tuple(name for name, _ in declared)}

        def fits(names):
            return all(n is None or n == want for n, want in zip(names, order))

        agree = [sensor for sensor, names in readings.items() if fits(names)]
        if agree and len(agree) == len(readings):
            unread = [(i, descriptions[i - 1].strip()) for i, d, (name, _)
                      in zip(files, designated, declared)
                      if name is None and d is None
                      and descriptions[i - 1].strip()
                      and not is_generic(descriptions[i - 1], i)]
            if unread:
                import warnings
                warnings.warn(
                    f'{src.name!r}: band description(s) '
                    f'{", ".join(repr(d) for _, d in unread)} (band(s) '
                    f'{", ".join(str(i) for i, _ in unread)}) name no band '
                    'scene inference knows, so their order could not be '
                    f'checked against the model\'s ({", ".join(order)})',
                    InferenceWarning, stacklevel=4)
            return
        labels = [descriptions[i - 1].strip() if d else (name or '?')
                  for i, d, (name, _) in zip(files, designated, declared)]
        sources = sorted({how for name, how in declared if name}
                         | ({'band description'} if any(designated)
                            else set()))
        what = (f'{src.name!r}: its bands are declared {", ".join(labels)} '
                f'({" and ".join(sources)}')
        if any(designated):
            what += '; ' + '; '.join(
                f'{", ".join(n or "?" for n in names)} as {sensor} bands'
                for sensor, names in _grouped(readings).items())
        what += ')'
        if agree:
            import warnings
            warnings.warn(
                f'{what}: read as {" / ".join(agree)} bands, as the model '
                f'reads modality {modality!r} ({", ".join(order)}); if the '
                'file is from another sensor, check its band order',
                InferenceWarning, stacklevel=4)
            return
        picks = _pick_bands(every, descriptions, order, readings)
        hint = '; write the model\'s bands to a new file in its order'
        if len(picks) == 1:
            pick = next(iter(picks.values()))
            hint = (f'; read them in the model\'s order with --bands '
                    f'{",".join(map(str, pick))} (tools/infer.py) or '
                    f'bands={pick} (RSInferencer), or write bands '
                    f'{", ".join(map(str, pick))} in that order to a new file')
        elif picks:  # the sensors disagree: one pick per sensor
            hint = ('; read them in the model\'s order with ' + ' or '.join(
                f'--bands {",".join(map(str, p))} if they are {sensor} bands'
                for sensor, p in picks.items())
                + ' (tools/infer.py; bands=[...] in RSInferencer)')
        raise ValueError(
            f'{what} but the model reads modality {modality!r} as '
            f'{", ".join(order)}' + hint)

    @property
    def reads_with_mmcv(self) -> bool:
        """True when the pipeline's loader is mmcv's ``LoadImageFromFile``
        (decodes with ``mmcv.imfrombytes``, :mod:`.decoding`)."""
        from .decoding import reads_with_mmcv
        return reads_with_mmcv(self.cfg)

    def decode_file(self, path: str) -> np.ndarray:
        """``path`` decoded by the pipeline's own ``LoadImageFromFile``:
        ``(H, W, C)`` in file order (RGB), uint8
        (:func:`.decoding.decode_like_loader`)."""
        from .decoding import decode_like_loader
        return decode_like_loader(path, self.cfg)

    def decode_as_loader(self, scene):
        """For a ``LoadImageFromFile`` pipeline, decode every scene file
        coded with a lossy-capable codec (JPEG, WebP, JPEG 2000, JPEG-
        compressed GeoTIFF, :func:`.decoding.lossy_codec`) once, whole, by
        that loader, so the model sees the pixels ``tools/test.py`` would
        feed it (GDAL's JPEG decoder differs); the file's georeferencing,
        nodata and mask stay GDAL's
        (:meth:`.scene.SceneSource.use_decoded`). Memory: the whole decoded
        image per such file (``H * W * C`` bytes). So is every file whose
        GDAL bands are not the loader's pixels in a band order
        (:func:`.decoding.not_band_order`: e.g. a uint16 or RGBA GeoTIFF, a
        palette, the ``tifffile`` backend). Other files (8-bit grey / RGB
        PNG, BMP, GeoTIFF), and every file of other pipelines, keep GDAL
        window reads.

        Raises:
            ValueError: one line for a file the loader cannot decode, that
                it decodes to another size or band count than GDAL's
                header, or whose orientation tag the loader would apply.
        """
        if not self.reads_with_mmcv:
            return
        from .decoding import check_orientation, lossy_codec, not_band_order
        for role in self.roles:
            src = scene.sources.get(role.role)
            if src is None or src.path is None or src.decoded_by:
                continue
            check_orientation(src.path, self.cfg)
            codec = lossy_codec(src.path) or not_band_order(src.path,
                                                            self.cfg)
            if codec is None:
                continue
            src.use_decoded(self.decode_file(src.path),
                            f'the model\'s loader {_short(self.cfg["type"])} '
                            f'({self.cfg.get("imdecode_backend", "cv2")}, '
                            f'{codec})')

    def check_dtype(self, src, modality: str):
        """Refuse ``src`` when its dtype is of another :func:`sample_kind`
        than the model's training samples; warn (:class:`InferenceWarning`)
        when the model's dtype is unknown.

        Raises:
            ValueError: one line naming the file, its dtype and the model's.
        """
        known = self.dtypes.get(modality)
        if known is None:
            import warnings
            warnings.warn(
                f'{src.name!r} ({src.dtype}): the sample dtype the model was '
                f'trained on is unknown for modality {modality!r} (checkpoint '
                "without meta['inference']['dtype'], no dtype in the "
                'statistics), so 8-bit / 16-bit / float input could not be '
                'checked against it', InferenceWarning, stacklevel=3)
            return
        if sample_kind(src.dtype) != sample_kind(known.dtype):
            raise ValueError(
                f'{src.name!r} holds {src.dtype} values but the model'
                f'{known.reason}, for modality {modality!r}: '
                f'{sample_kind(src.dtype)} vs {sample_kind(known.dtype)} '
                f'data; convert the scene to {known.dtype} the way the '
                'training data were, or use a model trained on '
                f'{src.dtype} data')

    @staticmethod
    def _check_alpha(src, role, need: int):
        """A band flagged alpha is data when the model needs it (``need``
        bands, the rule of the training loader); otherwise it must hold
        transparency (0 / maximum) only, else the file has more data bands
        than the model reads and is refused before any window is read."""
        if getattr(src, 'alpha', None) is None:
            return
        if getattr(src, 'bands', None) is not None:
            return  # SceneSource.select_bands decided what the alpha band is
        if src.count < need <= src.file_count:
            src.read_alpha_as_data()
            return
        odd = src.alpha_data_value()
        if odd is not None:
            names = DEFAULT_BAND_ORDER.get(role.modality, ())
            order = ', '.join(names)
            hint = '; write the model\'s bands to a new file'
            desc = ''
            if src.path is not None and names:
                descriptions = band_descriptions(src.path)
                if descriptions[src.alpha - 1].strip():
                    desc = f', described {descriptions[src.alpha - 1]!r}'
                every = declared_band_names(src.path, src.file_count, None,
                                            names)
                picks = _pick_bands(every, descriptions, names, {'': None})
                if picks:
                    pick = next(iter(picks.values()))
                    hint = (f'; select them with --bands '
                            f'{",".join(map(str, pick))} (bands={pick}) or '
                            'write them to a new file')
            raise ValueError(
                f'{src.name!r} has {src.file_count} band(s) (band '
                f'{src.alpha}{desc}, flagged alpha, holds data such as '
                f'{odd}, not only transparency 0 / maximum) but the model '
                f'expects {need} for '
                f'modality {role.modality!r}' + (f' ({order})' if order
                                                 else '') + hint)

    def check_bands(self, scene):
        for role in self.roles:
            src = scene.sources.get(role.role)
            if src is None:
                raise ValueError(
                    f'the model reads {[r.role for r in self.roles]} but the '
                    f'input gives {list(scene.sources)}')
            want = role.channels
            opt_bands = self.cfg.get('opt_bands')
            self._check_alpha(src, role, want if not (
                self.kind == 'opt_sar' and role.modality == 'opt'
                and opt_bands) else max(opt_bands) + 1)
            count = src.count
            if role.modality == 'sar_l1' and src.dtype.startswith('complex'):
                count *= 2
            if self.mmcv:
                self._check_mmcv_order(src, count, want)
            if self.kind == 'opt_sar' and role.modality == 'opt' and opt_bands:
                if max(opt_bands) >= count:
                    raise ValueError(
                        f'{src.name!r} has {count} band(s); the model picks '
                        f'bands {list(opt_bands)} (modality opt)'
                        + _layout_hint(src, max(opt_bands) + 1))
                continue
            if self.kind == 'opt_sar' and role.modality == 'sar_l2' and \
                    self.cfg.get('sar_band') is not None:
                continue
            if count != want and getattr(src, 'bands', None) is not None:
                order = ', '.join(DEFAULT_BAND_ORDER.get(role.modality, ()))
                raise ValueError(
                    f'{src.name!r}: bands {",".join(map(str, src.bands))} '
                    f'select {count} band(s) but the model reads {want} for '
                    f'modality {role.modality!r}'
                    + (f' ({order})' if order else ''))
            if count != want:
                order = ', '.join(DEFAULT_BAND_ORDER.get(role.modality, ()))
                raise ValueError(
                    f'{src.name!r} has {count} band(s) but the model expects '
                    f'{want} for modality {role.modality!r}'
                    + (f' ({order})' if order else '')
                    + _layout_hint(src, want))

    def _check_mmcv_order(self, src, count: int, want: int):
        """Refuse a raster whose bands mmcv's loader does not give as a
        band order (:func:`.decoding.mmcv_band_order`), in one line."""
        from .decoding import mmcv_band_order
        flag = str(self.cfg.get('color_type', 'color'))
        if mmcv_band_order(self.cfg, count) is not None or \
                not flag.startswith('grayscale'):
            return  # a band order, or a band count refused below
        backend = self.cfg.get('imdecode_backend') or 'cv2'
        raise ValueError(
            f'{src.name!r} has {count} band(s): the model\'s '
            f'{_short(self.cfg["type"])} (color_type={flag!r}, {backend}) '
            'turns them into 1 grey channel with its decoder\'s own colour '
            'conversion, which a window read cannot reproduce; give a scene '
            f'of 1 band')

    def _mmcv_order(self, img: np.ndarray) -> np.ndarray:
        from .decoding import mmcv_band_order
        order = mmcv_band_order(self.cfg, img.shape[2])
        if order is None:  # refused by check_bands
            raise ValueError(f'{_short(self.cfg["type"])} '
                             f'({self.cfg.get("color_type", "color")}) does '
                             f'not give {img.shape[2]} bands in a band order')
        if order != tuple(range(img.shape[2])):
            img = img[..., list(order)]
        return np.ascontiguousarray(img)

    def __call__(self, arrays: Dict[str, np.ndarray]) -> dict:
        if self.mmcv:  # each raster in the order mmcv's loader yields
            arrays = {k: self._mmcv_order(v) for k, v in arrays.items()}
        if self.kind == 'cv2':
            img = arrays['img']
            if self.to_float32:
                img = img.astype(np.float32)
            return dict(img=img)
        if self.kind == 'rs':
            img = arrays['img']
            if self.to_float32:
                img = img.astype(np.float32)
            return dict(img=img, modality=self.roles[0].modality)
        if self.kind == 'complex_sar':
            img = complex_to_channels(arrays['img'])
            if self.to_float32:
                img = img.astype(np.float32)
            return dict(img=img, modality='sar_l1')
        if self.kind == 'bitemporal':
            a, b = arrays['date1'], arrays['date2']
            img = np.concatenate([a, b], axis=2)
            if self.to_float32:
                img = img.astype(np.float32)
            return dict(img=img, img_path2='date2')
        if self.kind == 'opt_sar':
            from mmringmoe.datasets.seg_transforms import SelectBands
            opt, sar = arrays['opt'], arrays['sar_l2']
            p = self.pair
            if p.opt_bands is not None:
                opt = SelectBands(p.opt_bands)(dict(img=opt))['img']
            if p.sar_band is not None:
                sar = SelectBands([p.sar_band])(dict(img=sar))['img']
            if p.normalizers is not None:
                opt = p.normalizers['opt'](dict(img=opt))['img']
                sar = p.normalizers['sar_l2'](dict(img=sar))['img']
            img = np.concatenate([opt.astype(np.float32),
                                  sar.astype(np.float32)], axis=2)
            return dict(img=img, modality_channels=(
                ('opt', opt.shape[2]), ('sar_l2', sar.shape[2])))
        raise ValueError(self.kind)


def _roles_and_loader(load: dict, cfg, meta: dict, task: str,
                      stats: Optional[dict]):
    kind_name = _short(load['type'])
    info = meta.get('inference') or {}
    meta_mods = tuple(info.get('modalities') or ())
    bb_mods = _backbone_modalities(cfg)
    if kind_name == 'LoadOptSARPair':
        roles = (InputRole('opt', 'opt', 3), InputRole('sar_l2', 'sar_l2', 1))
        return roles, WindowLoader('opt_sar', load, roles, stats)
    if kind_name == 'LoadBitemporalImageFromFile':
        mod = load.get('modality', 'opt')
        ch = load.get('expected_channels') or MODALITY_CHANNELS[mod]
        roles = (InputRole('date1', mod, ch), InputRole('date2', mod, ch))
        return roles, WindowLoader('bitemporal', load, roles)
    if kind_name == 'LoadComplexSAR':
        roles = (InputRole('img', 'sar_l1', 8), )
        return roles, WindowLoader('complex_sar', load, roles)
    if kind_name == 'LoadRSImageFromFile':
        mod = load.get('modality') or (meta_mods or bb_mods or ('opt', ))[0]
        ch = load.get('expected_channels') or MODALITY_CHANNELS[mod]
        roles = (InputRole('img', mod, ch), )
        return roles, WindowLoader('rs', load, roles)
    if kind_name in _CV2_LOADERS:
        mod = (meta_mods or bb_mods or ('opt', ))[0]
        flag = str(load.get('color_type', 'color'))
        if (load.get('imdecode_backend') == 'tifffile'
                or flag == 'unchanged'):
            ch = MODALITY_CHANNELS[mod]  # every band of the file
        else:  # grey or 3-channel colour, whatever the modality
            ch = 1 if flag.startswith('grayscale') else 3
        if task == 'change_detection':
            roles = (InputRole('date1', mod, ch), InputRole('date2', mod, ch))
            return roles, WindowLoader('bitemporal', load, roles)
        roles = (InputRole('img', mod, ch), )
        return roles, WindowLoader('cv2' if ch == 3 else 'rs', load, roles)
    raise ValueError(f'scene inference does not know the test pipeline\'s '
                     f'loader {load["type"]!r} (it replaces '
                     'LoadImageFromFile, LoadImageFromNDArray, '
                     'LoadRSImageFromFile, LoadBitemporalImageFromFile, '
                     'LoadComplexSAR and LoadOptSARPair)')


def _palette(n: int) -> Tuple[Tuple[int, int, int], ...]:
    rng = np.random.RandomState(42)
    return tuple(tuple(int(v) for v in rng.randint(0, 256, 3))
                 for _ in range(n))


def _num_classes(model, task) -> Optional[int]:
    for attr in ('decode_head', 'roi_head', 'bbox_head', 'head'):
        head = getattr(model, attr, None)
        if head is None:
            continue
        if attr == 'roi_head':
            head = getattr(head, 'bbox_head', None)
        n = getattr(head, 'num_classes', None)
        if n is not None:
            return int(n)
    return None


def _classes(model, cfg, meta: dict, task: str):
    info = meta.get('inference') or {}
    dm = meta.get('dataset_meta') or getattr(model, 'dataset_meta', None) \
        or {}
    classes = info.get('classes') or dm.get('classes')
    palette = info.get('palette') or dm.get('palette')
    if not classes:
        ds_type = None
        dl = cfg.get('test_dataloader') or {}
        ds = dl.get('dataset', {}) if dl else {}
        ds_type = ds.get('type') if isinstance(ds, dict) else None
        if ds_type:
            from mmengine.registry import DATASETS
            try:
                cls = DATASETS.get(ds_type)
                mi = getattr(cls, 'METAINFO', {}) or {}
                classes = mi.get('classes')
                palette = palette or mi.get('palette')
            except Exception:
                classes = None
    n = _num_classes(model, task)
    if not classes:
        if task == 'depth':
            return ('height', ), ((255, 255, 255), )
        classes = tuple(f'class_{i}' for i in range(n or 0))
    classes = tuple(str(c) for c in classes)
    if n is not None and n != len(classes) and task != 'depth':
        if n == 1 and len(classes) == 2:  # binary sigmoid head
            pass
        else:
            raise ValueError(f'the model predicts {n} classes but its '
                             f'metadata names {len(classes)}: {classes}')
    if not palette or len(palette) < len(classes):
        palette = _palette(len(classes))
    palette = tuple(tuple(int(v) for v in p[:3]) for p in palette)
    return classes, palette[:len(classes)]


def _default_crop(cfg, meta: dict) -> Tuple[int, int]:
    return _crop_and_source(cfg, meta)[0]


def _crop_and_source(cfg, meta: dict) -> Tuple[Tuple[int, int],
                                                Optional[str]]:
    """The model's window size (rows, cols) and where it was found; the
    source is None for the 512 x 512 fallback."""
    info = meta.get('inference') or {}
    tc = cfg.model.get('test_cfg') or {}
    candidates = (
        (info.get('test_crop'), "the checkpoint's meta['inference']"
                                "['test_crop']"),
        (tc.get('crop_size') if isinstance(tc, dict) else None,
         "the config's model.test_cfg.crop_size"),
        ((cfg.model.get('data_preprocessor') or {}).get('size'),
         "the config's model.data_preprocessor.size"),
        (cfg.get('crop_size'), "the config's crop_size"))
    crop, source = next(((c, s) for c, s in candidates if c is not None),
                        (512, None))
    if isinstance(crop, int):
        crop = (crop, crop)
    return tuple(int(v) for v in crop), source


def describe_model(model, cfg, meta: Optional[dict] = None,
                   stats_file: Optional[str] = None) -> ModelSpec:
    """:class:`ModelSpec` of a built model with its config and checkpoint
    meta (module docstring).

    Raises:
        ValueError: unknown model type or loader, class count mismatch.
        FileNotFoundError: the config's statistics file is missing and
            neither the checkpoint nor ``stats_file`` gives the statistics.
    """
    meta = dict(meta or {})
    task = detect_task(model)
    steps = find_test_pipeline(cfg)
    stats = _stats_from(meta, stats_file)
    load_idx = next((i for i, t in enumerate(steps)
                     if _short(t['type']).startswith('Load')
                     and _short(t['type']) not in _DROP_ALWAYS), None)
    if load_idx is None:
        raise ValueError('the test pipeline has no image loader '
                         f'({[t["type"] for t in steps]})')
    load = steps[load_idx]
    roles, loader = _roles_and_loader(load, cfg, meta, task, stats)
    drop = _DROP_ALWAYS + (() if task == 'classification' else _DROP_DENSE)
    tail = [t for i, t in enumerate(steps) if i != load_idx
            and _short(t['type']) not in drop]
    config_stats = [t['stats_file'] for t in steps if t.get('stats_file')]
    loader.dtypes = model_dtypes(load, roles, meta, stats_file, stats,
                                 config_stats)
    _resolve_stats_files(tail, stats)
    classes, palette = _classes(model, cfg, meta, task)
    info = meta.get('inference') or {}
    band_order = {r.modality: tuple(
        (info.get('band_order') or {}).get(r.modality)
        or DEFAULT_BAND_ORDER.get(r.modality, ())) for r in roles}
    loader.band_order = band_order
    crop, crop_source = _crop_and_source(cfg, meta)
    return ModelSpec(task, roles, loader, tail, classes, palette, crop,
                     band_order, crop_source)


def inference_meta(cfg, dataset_meta: Optional[dict] = None,
                   sample_dtypes: Optional[Dict[str, str]] = None) -> dict:
    """``meta['inference']`` for a checkpoint of a model built from ``cfg``:
    modalities and band order, normalisation statistics (read from every
    ``stats_file`` of the test pipeline, or NormalizeRS ``mean``/``std``),
    the training samples' dtype per modality (``dtype``: the ``dtype`` of
    those statistics files (``compute_rs_stats.py`` writes it), ``uint8``
    for a ``LoadImageFromFile`` pipeline, else ``sample_dtypes``, e.g. the
    first training sample's as :class:`InferenceMetaHook` reads it; left out
    when unknown), classes and palette, the test crop. Plain lists and
    strings only, so the checkpoint stays weights-only loadable."""
    steps = find_test_pipeline(cfg)
    stats: Dict[str, dict] = {}
    mods: List[str] = []
    eight_bit = False
    for t in steps:
        if _decodes_8_bit(t):
            eight_bit = True
        if t.get('modality') and t['modality'] not in mods:
            mods.append(t['modality'])
        path = t.get('stats_file')
        if path and osp.isfile(path):
            with open(path) as f:
                stats.update(json.load(f))
        if t.get('stats'):
            stats.update(t['stats'])
        if _short(t['type']) == 'NormalizeRS' and t.get('mean') is not None:
            m = t.get('modality') or (mods or list(
                _backbone_modalities(cfg)) or ['opt'])[0]
            stats[m] = dict(mean=list(t['mean']), std=list(t['std']))
        if _short(t['type']) == 'LoadComplexSAR' and 'sar_l1' not in mods:
            mods.append('sar_l1')
        if _short(t['type']) == 'LoadOptSARPair':
            mods = ['opt', 'sar_l2']
    if not mods:
        mods = list(_backbone_modalities(cfg)) or ['opt']
    out = dict(modalities=mods,
               band_order={m: list(DEFAULT_BAND_ORDER.get(m, ()))
                           for m in mods},
               stats={m: dict(mean=[float(v) for v in s['mean']],
                              std=[float(v) for v in s['std']])
                      for m, s in stats.items()
                      if isinstance(s, dict) and 'mean' in s},
               test_crop=list(_default_crop(cfg, {})))
    dtypes = {m: str(s['dtype']) for m, s in stats.items()
              if isinstance(s, dict) and s.get('dtype')}
    for m in mods:
        if eight_bit:
            dtypes[m] = 'uint8'
        elif m not in dtypes and (sample_dtypes or {}).get(m):
            dtypes[m] = str(sample_dtypes[m])
    if dtypes:
        out['dtype'] = dtypes
    dp = cfg.model.get('data_preprocessor') or {}
    if dp.get('mean') is not None:
        out['data_preprocessor'] = dict(
            mean=[float(v) for v in dp['mean']],
            std=[float(v) for v in dp['std']],
            bgr_to_rgb=bool(dp.get('bgr_to_rgb', False)))
    if dataset_meta:
        if dataset_meta.get('classes'):
            out['classes'] = [str(c) for c in dataset_meta['classes']]
        if dataset_meta.get('palette'):
            out['palette'] = [[int(v) for v in p]
                              for p in dataset_meta['palette']]
    return out


__all__ = ['ModelSpec', 'InputRole', 'InferenceWarning', 'WindowLoader',
           'describe_model', 'model_dtypes', 'sample_kind', 'ModelDtype',
           'detect_task', 'find_test_pipeline', 'inference_meta',
           'DEFAULT_BAND_ORDER', 'declared_band_names']
