"""Multi-object tracking over a folder of frames or a video (issue 14).

``RSTrackInferencer`` runs an mmdet 3.x MOT model (our ByteTrack + YOLOX
configs, ``configs/tracking/``) frame by frame and writes

- a MOTChallenge txt, one line per box: ``frame,id,x,y,w,h,score,-1,-1,-1``
  (frame 1-based, pixel coordinates of the frame, ``x, y`` the top-left
  corner), written with the format of mmdet's ``MOTChallengeMetric``
  (``%d,%d,%.3f,...``), which TrackEval reads;
- with ``show_dir``, one PNG per frame (``000001.png`` for frame 1) with every
  box outlined in its track's own colour and labelled with its id;
- for frames that are GeoTIFFs on one grid (same CRS and transform), a
  GeoJSON FeatureCollection in the scene CRS next to the txt: one ``Polygon``
  per box (properties ``frame``, ``track_id``, ``score``, ``class_name``,
  ``pixel_bbox``) and one ``LineString`` per track through its box centres.
  Frames whose transforms differ get no GeoJSON (the txt and PNGs are in
  pixels and stay right); the result's ``geo_note`` says which frames differ.
  The tracker associates boxes in pixel coordinates, so on a moving grid its
  tracks mix object and grid motion: mapping them is left to the user.

It is an :class:`mmringmoe.apis.RSInferencer` (mmengine ``BaseInferencer``):
model building, checkpoint loading (every weight checked,
``meta['inference']`` read) and the collate function are shared with scene
inference; ``RSInferencer(track_config, ckpt)`` returns this class. Each
frame goes through the config's own test pipeline (the
``TransformBroadcaster`` of ``LoadImageFromFile`` + ``Resize`` +
``LoadTrackAnnotations`` and ``PackTrackInputs``) with the loader replaced by
our raster reader (:class:`mmringmoe.apis.model_spec.WindowLoader`: 8-bit
PNG/JPEG/TIFF, BGR order as cv2 decodes them; JPEG frames of a
``LoadImageFromFile`` model decoded by that loader's own decoder, see
:meth:`RSTrackInferencer.jpeg_decoder`) and the annotation loader left
out, then through ``model.test_step`` with ``frame_id`` counting from 0, as
mmdet's test loop feeds a video (``TrackImgSampler``). Nodata in the frames
is not masked (the test loop does not either); it only shows in the rendered
frames. Ids are the tracker's (ByteTracker counts from 0), as mmdet's metric
writes them. mmdet's
``inference_mot`` is not used: it casts frames to float32 before ``Resize``
(the test loop resizes uint8 frames, so boxes would differ from what
``tools/test.py`` scores) and rebuilds the pipeline on every frame.

Tracklet post-processing: by default the txt holds what the config's
``test_evaluator`` writes, i.e. its ``postprocess_tracklet_cfg``
(``InterpolateTracklets`` in our configs: gaps of up to 20 frames in a track
seen on more than 5 frames are filled linearly, and tracks seen on 2 frames
or fewer are dropped) applied to the whole sequence; ``postprocess=False``
keeps the tracker's raw output. The rendered frames show the txt's boxes.

Rendering composes mmengine's ``Visualizer`` (``draw_bboxes``,
``draw_texts``) rather than mmdet's ``TrackLocalVisualizer``: that one
imports seaborn (not installed here) and draws each id's colour at random
from 10 seaborn colours, so two tracks can share a colour; here track ``i``
gets hue ``(i * 0.618...) mod 1`` (golden-ratio sequence), a colour of its
own among the first 300 ids (:func:`track_color`).
"""
import colorsys
import json
import os
import os.path as osp
import re
import warnings
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from .rs_inferencer import RSInferencer

#: Frame file extensions read from a folder (those of the AIR-MOT converter).
FRAME_EXTS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')
#: Video file extensions read with ``mmcv.VideoReader`` (OpenCV / FFmpeg).
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.mpg', '.mpeg',
              '.wmv', '.webm', '.flv')
#: ``MOTChallengeMetric._save_one_video_gts_preds`` line format.
MOT_LINE = '%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,-1,-1,-1\n'


def natural_key(name: str):
    """Sort key that orders digit runs by value: ``frame_2`` before
    ``frame_10`` (case-insensitive otherwise)."""
    return [(0, int(t), '') if t.isdigit() else (1, 0, t.lower())
            for t in re.split(r'(\d+)', name) if t != '']


def is_tracking_config(config) -> bool:
    """True when ``config`` (path or ``Config``) builds an mmdet MOT model
    (a ``model`` holding a ``tracker``, as ByteTrack, SORT, OC-SORT,
    StrongSORT and QDTrack do)."""
    from mmengine.config import Config
    if isinstance(config, (str, os.PathLike)):
        if not osp.isfile(config):
            return False
        try:
            config = Config.fromfile(str(config))
        except Exception:  # reported by the caller's own config loading
            return False
    model = config.get('model') if hasattr(config, 'get') else None
    return bool(model) and hasattr(model, 'get') and \
        model.get('tracker') is not None


def track_color(track_id: int) -> Tuple[int, int, int]:
    """RGB colour of a track id: hue ``(id * 0.618034) mod 1``, saturation
    0.85, value 1. Ids 0-299 get 300 different 8-bit colours (0-999: 979);
    neighbouring ids differ by 0.38 of the hue circle."""
    h = (int(track_id) * 0.6180339887498949) % 1.0
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, 0.85,
                                                                  1.0))


class FrameSequence:
    """The frames of one video: a folder of images (natural order) or a
    video file.

    Attributes:
        name (str): the folder or file.
        names (list[str]): frame file names (video: ``000001`` ...).
        paths (list[str]): input files (never written over).
        height, width, count (int): frame size and band count; dtype (str).
        crs, transform: the frames' common georeferencing, or None (none,
            or frames on different grids: then ``geo_note`` says why).

    Raises:
        FileNotFoundError: no such folder / file.
        ValueError: (one line) an empty folder, frames of different sizes,
            band counts or dtypes, an unreadable frame or video, a path
            that is neither a folder nor a video.
    """

    def __init__(self, source):
        from mmringmoe.datasets.transforms.raster_io import raster_info
        source = os.fspath(source)
        self.name = source
        self.geo_note: Optional[str] = None
        self.crs = self.transform = None
        self._video = None
        if osp.isdir(source):
            files = sorted((f for f in os.listdir(source)
                            if osp.splitext(f)[1].lower() in FRAME_EXTS
                            and osp.isfile(osp.join(source, f))),
                           key=natural_key)
            if not files:
                raise ValueError(f'frames folder {source!r} holds no image '
                                 f'file ({", ".join(FRAME_EXTS)})')
            self.names = files
            self.paths = [osp.join(source, f) for f in files]
            infos = []
            for p in self.paths:
                try:
                    infos.append(raster_info(p))
                except Exception as e:  # rasterio's messages span lines
                    msg = str(e).strip().splitlines()
                    raise ValueError(f'cannot read frame {p!r}: '
                                     f'{msg[0] if msg else type(e).__name__}'
                                     ) from e
            first = infos[0]
            for info in infos[1:]:
                if (info.height, info.width) != (first.height, first.width):
                    raise ValueError(
                        f'frame {info.path!r} is {info.height} x {info.width}'
                        f' px (rows x cols) but {first.path!r} is '
                        f'{first.height} x {first.width}; all frames of a '
                        'video must have one size')
                if info.count != first.count:
                    raise ValueError(
                        f'frame {info.path!r} has {info.count} band(s) but '
                        f'{first.path!r} has {first.count}; all frames of a '
                        'video must have the same bands')
                if info.dtype != first.dtype:
                    raise ValueError(
                        f'frame {info.path!r} holds {info.dtype} values but '
                        f'{first.path!r} holds {first.dtype}')
            self.height, self.width = first.height, first.width
            self.count, self.dtype = first.count, first.dtype
            self._georef(infos)
        elif osp.isfile(source):
            if osp.splitext(source)[1].lower() not in VIDEO_EXTS:
                raise ValueError(
                    f'tracking reads a folder of frames or a video file '
                    f'({", ".join(VIDEO_EXTS)}); {source!r} is neither')
            import mmcv
            video = mmcv.VideoReader(source)
            if not video.opened or video.width <= 0 or video.frame_cnt <= 0:
                raise ValueError(f'cannot read video {source!r} (OpenCV '
                                 'found no frames)')
            self._video = video
            self.paths = [source]
            self.height, self.width = video.height, video.width
            self.count, self.dtype = 3, 'uint8'
            self.names = [f'{i + 1:06d}' for i in range(video.frame_cnt)]
        else:
            raise FileNotFoundError(f'input {source!r} does not exist')

    def _georef(self, infos):
        from .scene import SceneSource, _grid_mismatch
        first = infos[0]
        if all(i.crs is None and i.transform is None for i in infos):
            geo = next((i for i in infos if i.gcps or i.rpcs is not None),
                       None)
            if geo is not None:  # raw L1 frames: GCPs / RPCs, no transform
                self.geo_note = (
                    f'frame {geo.path!r} is georeferenced by '
                    f'{"GCPs" if geo.gcps else "RPCs"}, not by a transform; '
                    'no GeoJSON written (the txt is in pixels)')
            return
        ref = SceneSource(first.path)
        for info in infos[1:]:
            diff = _grid_mismatch(ref, SceneSource(info.path))
            if diff is not None:
                self.geo_note = (f'frame {info.path!r} has {diff}; frames on '
                                 'different grids get no GeoJSON (the txt '
                                 'and rendered frames are in pixels)')
                return
        if first.crs is None or first.transform is None:
            self.geo_note = (f'frames have a transform but no CRS '
                             f'({first.path!r}); no GeoJSON written')
            return
        self.crs, self.transform = first.crs, first.transform

    def __len__(self):
        return len(self.names)

    def frames(self, jpeg_decoder=None):
        """Yield ``(index, name, array (H, W, C) in file / RGB order, valid
        (H, W) bool)``; a video frame is BGR from OpenCV, turned to RGB.

        ``jpeg_decoder(path) -> (H, W, C) RGB``, when given, decodes the
        frames coded with a lossy-capable codec (JPEG, WebP, JPEG 2000,
        JPEG-compressed TIFF: :func:`mmringmoe.apis.decoding.lossy_codec`)
        and, when it has a ``needed(path)`` attribute, the frames it says
        (:func:`mmringmoe.apis.decoding.not_band_order`) instead of the
        raster reader (GDAL); a decoded frame of another band count than
        GDAL's is refused in one line."""
        if self._video is None:
            from mmringmoe.datasets.transforms.raster_io import \
                read_raster_with_meta

            from .decoding import lossy_codec
            # which frames the loader must decode (lossy codec, bands that
            # are not its pixels in a band order: jpeg_decoder.needed)
            needed = getattr(jpeg_decoder, 'needed', lossy_codec)
            for i, (name, path) in enumerate(zip(self.names, self.paths)):
                if jpeg_decoder is not None and needed(path):
                    arr = jpeg_decoder(path)
                    if arr.shape[2] != self.count:
                        raise ValueError(
                            f'frame {path!r}: the model\'s loader decodes '
                            f'{arr.shape[2]} band(s), GDAL reads '
                            f'{self.count}')
                    yield i, name, arr, np.ones(arr.shape[:2], bool)
                    continue
                arr, meta = read_raster_with_meta(path)
                yield i, name, arr, meta.valid_mask
            return
        video = self._video
        video.vcap.set(1, 0)  # cv2.CAP_PROP_POS_FRAMES
        video._position = 0
        for i in range(len(self.names)):
            frame = video.read()
            if frame is None:  # the header's frame count can be too high
                del self.names[i:]
                return
            if frame.shape[:2] != (self.height, self.width):
                raise ValueError(f'video {self.name!r}: frame {i + 1} is '
                                 f'{frame.shape[0]} x {frame.shape[1]} px, '
                                 f'the video header says {self.height} x '
                                 f'{self.width}')
            yield i, self.names[i], np.ascontiguousarray(frame[..., ::-1]), \
                np.ones(frame.shape[:2], bool)


class TrackResult(NamedTuple):
    """What :class:`RSTrackInferencer` returns for one video.

    Attributes:
        task (str): ``'tracking'``.
        tracks (np.ndarray): ``(N, 7)`` float64 rows ``frame (1-based),
            track_id, x, y, w, h, score`` in frame pixels: the txt's rows.
        labels (dict): ``{track_id: class index}`` (the class of the track's
            most frequent detection label).
        classes (tuple[str]): class names.
        frames (list[str]): frame names in order (txt frame ``k`` is
            ``frames[k - 1]``).
        shape (tuple): ``(H, W)`` of the frames.
        crs, transform: the frames' georeferencing (None if none or frames
            on different grids).
        out, geojson, show_dir: files / folder written (None when not).
        geo_note (str | None): why no GeoJSON was written for georeferenced
            frames.
        num_frames (int): frames read.
    """
    task: str
    tracks: np.ndarray
    labels: Dict[int, int]
    classes: Tuple[str, ...]
    frames: List[str]
    shape: Tuple[int, int]
    crs: Optional[str]
    transform: Optional[Tuple[float, ...]]
    out: Optional[str]
    geojson: Optional[str]
    show_dir: Optional[str]
    geo_note: Optional[str]
    num_frames: int


def _short(type_name) -> str:
    return str(type_name).split('.')[-1]


class RSTrackInferencer(RSInferencer):
    """Track objects through a folder of frames or a video (module
    docstring).

    Args: those of :class:`RSInferencer` (``config``, ``checkpoint``,
    ``device``, ``stats``, ``scope``); the config's model must be an mmdet
    MOT model (``model.tracker``).

    Example::

        inferencer = RSInferencer('bytetrack_cfg.py', 'model.pth')  # -> this
        result = inferencer('frames/', out='tracks.txt', show_dir='vis/')
    """

    def _init_pipeline(self, cfg):
        from mmdet.models.mot import BaseMOTModel
        from mmengine.config import ConfigDict
        from mmengine.dataset import Compose

        from .model_spec import (_DROP_ALWAYS, _resolve_stats_files,
                                 _roles_and_loader, _stats_from,
                                 find_test_pipeline, model_dtypes)
        if not isinstance(self.model, BaseMOTModel):
            raise ValueError(f'{type(self.model).__name__} is not a tracking '
                             'model (mmdet BaseMOTModel)')
        steps = find_test_pipeline(cfg)
        if not steps or _short(steps[0]['type']) != 'TransformBroadcaster':
            raise ValueError('the tracking test pipeline should start with a '
                             'TransformBroadcaster holding the image loader '
                             f'(mmdet MOT configs); found '
                             f'{[t["type"] for t in steps]}')
        inner = list(steps[0]['transforms'])
        load_idx = next((i for i, t in enumerate(inner)
                         if _short(t['type']).startswith('Load')
                         and _short(t['type']) not in _DROP_ALWAYS), None)
        if load_idx is None:
            raise ValueError('the tracking test pipeline has no image loader '
                             f'({[t["type"] for t in inner]})')
        meta = self.checkpoint_meta
        stats = _stats_from(meta, self._stats_file)
        # the backbone sits in the detector of a MOT model
        det = cfg.model.get('detector') or {}
        shim = ConfigDict(model=dict(backbone=det.get('backbone') or {}))
        self.roles, self.loader = _roles_and_loader(
            inner[load_idx], shim, meta, 'detection', stats)
        # the training sample dtype, checked against the frames' dtype
        # (as describe_model does for scenes)
        self.loader.dtypes = model_dtypes(
            inner[load_idx], self.roles, meta, self._stats_file, stats,
            [t['stats_file'] for t in inner if t.get('stats_file')])
        kept = [t for i, t in enumerate(inner) if i != load_idx
                and _short(t['type']) not in _DROP_ALWAYS]
        _resolve_stats_files(kept, stats)
        broadcaster = dict(steps[0])
        broadcaster['transforms'] = kept
        self.classes = self._class_names(cfg, meta)
        self.modality = self.roles[0].modality
        return Compose([broadcaster] + list(steps[1:]))

    def _class_names(self, cfg, meta) -> Tuple[str, ...]:
        """Class names: checkpoint ``meta['inference']`` or
        ``meta['dataset_meta']``, else the config's test data set
        ``metainfo`` or ``classes``, else ``class_i``; their number must be
        the detector head's ``num_classes``."""
        info = meta.get('inference') or {}
        dm = meta.get('dataset_meta') or {}
        classes = info.get('classes') or dm.get('classes')
        if not classes:
            ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
            classes = (ds.get('metainfo') or {}).get('classes') or \
                cfg.get('classes')
        head = getattr(getattr(self.model, 'detector', None), 'bbox_head',
                       None)
        n = getattr(head, 'num_classes', None)
        if not classes:
            classes = [f'class_{i}' for i in range(n or 1)]
        classes = tuple(str(c) for c in classes)
        if n is not None and n != len(classes):
            raise ValueError(f'the detector predicts {n} classes but its '
                             f'metadata names {len(classes)}: {classes}')
        return classes

    def jpeg_decoder(self):
        """For a model whose pipeline decodes with ``LoadImageFromFile``
        (mmcv's): a function decoding a frame as that loader does
        (:meth:`WindowLoader.decode_file
        <mmringmoe.apis.model_spec.WindowLoader.decode_file>`: the loader
        itself, with its ``color_type``, ``imdecode_backend`` and
        ``backend_args``), returned in RGB order; None otherwise.

        It is used for the frames coded with a lossy-capable codec (JPEG,
        WebP, JPEG 2000, JPEG-compressed TIFF,
        :func:`mmringmoe.apis.decoding.lossy_codec`): GDAL's (the raster
        reader's) JPEG decoder gives values up to 39 levels away from
        OpenCV's at sharp coloured edges (measured on the tests' frames), so
        such frames are decoded the way the model saw them in training and
        in ``tools/test.py``. PNG, BMP and TIFF decode to the same values
        either way (tested) when 8-bit grey or RGB; other frames (e.g. a
        uint16 or RGBA TIFF, the ``tifffile`` backend:
        :func:`mmringmoe.apis.decoding.not_band_order`, the function's
        ``needed``) are decoded by the loader too."""
        if not self.loader.reads_with_mmcv:
            return None

        def decode(path):
            img = self.loader.decode_file(path)
            if img.shape[:2] != (self._seq_shape):
                raise ValueError(f'frame {path!r} decodes to {img.shape[0]} '
                                 f'x {img.shape[1]} px, its header says '
                                 f'{self._seq_shape[0]} x '
                                 f'{self._seq_shape[1]}')
            return img

        def needed(path):  # lossy, or GDAL's bands are not its pixels
            from .decoding import lossy_codec, not_band_order
            return lossy_codec(path) or not_band_order(path, self.loader.cfg)
        decode.needed = needed
        return decode

    def _postprocessors(self, cfg) -> list:
        from mmdet.registry import TASK_UTILS
        from mmengine.registry import DefaultScope

        from mmringmoe.evaluation.metrics.mot_metric import _SkipEmpty
        ev = cfg.get('test_evaluator') or {}
        evs = ev if isinstance(ev, (list, tuple)) else [ev]
        for e in evs:
            if e and e.get('postprocess_tracklet_cfg'):
                with DefaultScope.overwrite_default_scope('mmdet'):
                    return [_SkipEmpty(TASK_UTILS.build(c))
                            for c in e['postprocess_tracklet_cfg']]
        return []

    @staticmethod
    def _apply_postprocess(methods, tracks: np.ndarray) -> np.ndarray:
        """The metric's post-processing on the whole sequence. mmdet's
        ``InterpolateTracklets`` drops tracks with <= 2 boxes but fails
        (``np.concatenate`` of nothing) when that is every track; the
        result is then empty, as it would have been."""
        for m in methods:
            if tracks.size and type(m.method).__name__ == \
                    'InterpolateTracklets':
                _, counts = np.unique(tracks[:, 1], return_counts=True)
                if counts.max() <= 2:
                    tracks = tracks[:0]
                    continue
            tracks = np.asarray(m.forward(tracks), np.float64).reshape(-1, 7)
        return tracks

    @torch.no_grad()
    def track_frame(self, index: int, name: str, arr: np.ndarray,
                    num_frames: int):
        """Run the model on one frame (``index`` 0-based, frames in order);
        returns its ``pred_track_instances`` (boxes x1y1x2y2 in frame
        pixels, ``instances_id``, ``scores``, ``labels``)."""
        results = self.loader({'img': arr})
        img = results.pop('img')
        h, w = img.shape[:2]
        data = dict(img=[img], img_path=[name], frame_id=[index],
                    ori_shape=[(h, w)], img_shape=[(h, w)],
                    img_id=[index + 1], ori_video_length=[num_frames])
        for k, v in results.items():
            data[k] = [v]
        packed = self.pipeline(data)
        out = self.model.test_step(self.collate_fn([packed]))
        return out[0][0].pred_track_instances

    def __call__(self, inputs, out: Optional[str] = None,
                 show_dir: Optional[str] = None,
                 geojson: Optional[str] = None, postprocess: bool = True,
                 overwrite: bool = False, progress=None,
                 score_thr: float = 0.0) -> TrackResult:
        """Track the objects of a video.

        Args:
            inputs (str): a folder of frames (``.jpg .jpeg .png .tif .tiff
                .bmp``, sorted naturally: ``f_2`` before ``f_10``) or a
                video file (:data:`VIDEO_EXTS`, read with OpenCV).
            out (str, optional): MOTChallenge txt; None keeps the tracks in
                ``result.tracks`` only.
            show_dir (str, optional): folder for rendered frames
                ``000001.png`` ... (created if missing).
            geojson (str, optional): GeoJSON path for georeferenced frames;
                default ``<out stem>.geojson``; ``False`` writes none.
            postprocess (bool): apply the config's tracklet post-processing
                (module docstring).
            overwrite (bool): replace existing outputs (never an input).
            progress: ``progress(done, total)`` callable after every frame,
                or True for a tqdm bar on a terminal
                (:func:`mmringmoe.visualization.progress.progress`).
            score_thr (float): rendered frames leave out boxes scoring
                below it (the txt keeps every box).

        Returns:
            TrackResult

        Raises:
            ValueError: (one line) bad frames (see :class:`FrameSequence`),
                a band count / dtype the model's loader cannot read, an
                output that is an input or a rendered frame that would land
                on an input.
            FileExistsError: an output exists and ``overwrite`` is False.
        """
        from .scene import RasterArray, build_scene, same_file
        from .writers import check_output_path
        seq = FrameSequence(inputs)
        probe = RasterArray(np.zeros((1, 1, seq.count), np.dtype(
            seq.dtype if not seq.dtype.startswith('complex') else
            'complex64')), name=seq.paths[0])
        self.loader.check(build_scene(probe))
        # every output is checked before the first frame is read
        if out is not None:
            check_output_path(out, seq.paths, overwrite)
        gj = None
        if seq.crs is not None and geojson is not False:
            gj = geojson or (osp.splitext(out)[0] + '.geojson'
                             if out is not None else None)
        if gj is not None:
            if out is not None and same_file(gj, out):
                raise ValueError(f'GeoJSON {gj!r} is also the txt output')
            check_output_path(gj, seq.paths, overwrite)
        shows = []
        if show_dir is not None:
            if osp.isdir(seq.name) and osp.exists(show_dir) and \
                    same_file(show_dir, seq.name):
                raise ValueError(f'--show-dir {show_dir!r} is the frames '
                                 'folder; give the rendered frames their own '
                                 'folder')
            digits = max(6, len(str(len(seq))))
            shows = [osp.join(show_dir, f'{i + 1:0{digits}d}.png')
                     for i in range(len(seq))]
            if osp.isdir(show_dir):
                for p in shows:
                    check_output_path(p, seq.paths, overwrite)
                    if out is not None and same_file(p, out):
                        raise ValueError(f'rendered frame {p!r} is the txt '
                                         'output')
        methods = self._postprocessors(self.cfg) if postprocess else []
        tracker = getattr(self.model, 'tracker', None)
        if tracker is not None and hasattr(tracker, 'reset'):
            tracker.reset()

        self._seq_shape = (seq.height, seq.width)
        decoder = self.jpeg_decoder()
        if progress is True:
            from mmringmoe.visualization.progress import progress as pbar
            bar_iter = pbar(seq.frames(decoder), total=len(seq),
                            desc='frames', unit='frame')
        else:
            bar_iter = seq.frames(decoder)
        rows: List[np.ndarray] = []
        label_votes: Dict[int, Dict[int, int]] = {}
        n = 0
        for i, name, arr, _valid in bar_iter:
            inst = self.track_frame(i, name, arr, len(seq))
            b = inst.bboxes
            b = (b.tensor if hasattr(b, 'tensor') else b).detach().cpu()
            ids = inst.instances_id.detach().cpu()
            scores = inst.scores.detach().cpu()
            labels = inst.labels.detach().cpu()
            for k in range(len(ids)):
                # as MOTChallengeMetric.transform_gt_and_pred: w, h in the
                # boxes' own float32, then one float64 row
                rows.append(np.array([i + 1, ids[k], b[k][0], b[k][1],
                                      b[k][2] - b[k][0], b[k][3] - b[k][1],
                                      scores[k]], dtype=np.float64))
                votes = label_votes.setdefault(int(ids[k]), {})
                votes[int(labels[k])] = votes.get(int(labels[k]), 0) + 1
            n += 1
            if callable(progress):
                progress(n, len(seq))
        if hasattr(bar_iter, 'close'):
            bar_iter.close()
        tracks = np.array(rows, np.float64).reshape(-1, 7)
        if methods:
            tracks = self._apply_postprocess(methods, tracks)
        labels = {t: max(v.items(), key=lambda kv: (kv[1], -kv[0]))[0]
                  for t, v in label_votes.items()}
        if out is not None:
            write_mot_txt(out, tracks, overwrite)
        if gj is not None:
            fc = tracks_geojson(tracks, labels, self.classes, seq.names,
                                seq.transform, seq.crs)
            from .writers import write_json
            write_json(gj, fc, overwrite)
        if show_dir is not None:
            os.makedirs(show_dir, exist_ok=True)
            for p in shows:  # a folder created just now, or checked above
                check_output_path(p, seq.paths, overwrite)
            self._render(seq, tracks, labels, shows, score_thr,
                         progress is True)
        return TrackResult('tracking', tracks, labels, self.classes,
                           list(seq.names), (seq.height, seq.width), seq.crs,
                           seq.transform, out, gj, show_dir, seq.geo_note, n)

    def _render(self, seq: FrameSequence, tracks: np.ndarray,
                labels: Dict[int, int], paths: Sequence[str],
                score_thr: float, bar: bool):
        import mmcv
        from mmengine.visualization import Visualizer

        from mmringmoe.visualization.display import display_image
        vis = Visualizer(name=f'rs_track_{id(self)}_{len(paths)}')
        frames = seq.frames(self.jpeg_decoder())
        if bar:
            from mmringmoe.visualization.progress import progress as pbar
            frames = pbar(frames, total=len(seq), desc='render',
                          unit='frame')
        by_frame: Dict[int, np.ndarray] = {}
        for row in tracks:
            by_frame.setdefault(int(row[0]), []).append(row)
        for i, name, arr, valid in frames:
            with warnings.catch_warnings():  # boxes reaching past the frame
                warnings.filterwarnings('ignore', 'Warning: The .* is out of '
                                        'bounds', UserWarning)
                self._draw_frame(vis, display_image(arr, self.modality,
                                                    valid).rgb,
                                 by_frame.get(i + 1, []), score_thr, seq)
            mmcv.imwrite(vis.get_image()[..., ::-1], paths[i])

    @staticmethod
    def _draw_frame(vis, rgb: np.ndarray, rows, score_thr: float,
                    seq: FrameSequence):
        """Draw the boxes of one frame (rows ``frame, id, x, y, w, h,
        score``) on ``rgb`` (uint8 ``(H, W, 3)``, the frame as stored):
        outline and id label in the track's colour. The canvas is the frame
        at its own size: parts of boxes past its edges are cut off, a label
        sits at the box's top-left corner moved into the frame, a box wholly
        outside gets none."""
        vis.set_image(rgb)
        h, w = rgb.shape[:2]
        rows = [r for r in rows if r[6] >= score_thr]
        if rows:
            r = np.array(rows)
            boxes = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4],
                              r[:, 3] + r[:, 5]], 1)
            colors = [track_color(int(t)) for t in r[:, 1]]
            lw = max(1, round(min(seq.height, seq.width) / 300))
            vis.draw_bboxes(torch.from_numpy(boxes), edge_colors=colors,
                            line_widths=lw)
            size = max(8, round(min(seq.height, seq.width) / 50))
            for box, t, c in zip(boxes, r[:, 1], colors):
                if box[0] >= w or box[1] >= h or box[2] <= 0 or box[3] <= 0:
                    continue  # no part of the box is in the frame
                # a box reaching past the top/left edge: label at the edge
                vis.draw_texts(str(int(t)), np.maximum(box[:2], 0) + lw,
                               colors='black', font_sizes=size,
                               bboxes=[dict(facecolor=[v / 255 for v in c],
                                            alpha=0.8, pad=0.5,
                                            edgecolor='none')])
        # matplotlib >= 3.11 autoscales the view in Axes.add_collection
        # (mmengine's draw_bboxes): a box reaching past the frame widened
        # the view and the frame shrank inside a white canvas. The view is
        # the frame, pixel for pixel, as imshow(extent=...) set it.
        from mmringmoe.visualization.image_view import reset_view
        reset_view(vis)


def write_mot_txt(path: str, tracks: np.ndarray, overwrite: bool = False):
    """MOTChallenge txt of ``(N, 7)`` rows ``frame, id, x, y, w, h, score``
    (mmdet ``MOTChallengeMetric`` line format), via ``<path>.part``."""
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'output {path!r} exists')
    tmp = path + '.part'
    with open(tmp, 'w') as f:
        for t in tracks:
            f.write(MOT_LINE % (t[0], t[1], t[2], t[3], t[4], t[5], t[6]))
    os.replace(tmp, path)


def tracks_geojson(tracks: np.ndarray, labels: Dict[int, int],
                   classes: Sequence[str], frames: Sequence[str], transform,
                   crs_wkt: Optional[str]) -> dict:
    """FeatureCollection of tracks in the scene CRS.

    Args:
        tracks: ``(N, 7)`` rows ``frame (1-based), id, x, y, w, h, score``
            in pixels (pixel ``(r, c)`` spans ``[c, c+1) x [r, r+1)``).
        labels: ``{track_id: class index}``; classes: names.
        frames: frame names (``frames[frame - 1]``).
        transform, crs_wkt: the frames' common georeferencing.

    Returns:
        dict: a ``Polygon`` feature per box (properties ``kind='box'``,
        ``frame``, ``image``, ``track_id``, ``score``, ``class_name``,
        ``pixel_bbox`` = x1, y1, x2, y2) and a ``LineString`` per track
        through its box centres in frame order (``kind='track'``,
        ``track_id``, ``first_frame``, ``last_frame``, ``num_boxes``,
        ``class_name``); a GeoJSON 2008 ``crs`` member.
    """
    from .writers import crs_member, pixel_to_map

    def cname(tid):
        lab = labels.get(int(tid))
        if lab is None:
            return None
        return str(classes[lab]) if lab < len(classes) else f'class_{lab}'

    feats: List[dict] = []
    for t in tracks:
        f, tid, x, y, w, h, s = (float(v) for v in t)
        cols = np.array([x, x + w, x + w, x])
        rws = np.array([y, y, y + h, y + h])
        xs, ys = pixel_to_map(transform, cols, rws)
        ring = [[float(a), float(b)] for a, b in zip(xs, ys)]
        ring.append(ring[0])
        fi = int(f)
        feats.append(dict(type='Feature',
                          geometry=dict(type='Polygon', coordinates=[ring]),
                          properties=dict(
                              kind='box', frame=fi,
                              image=str(frames[fi - 1]) if 0 < fi <= len(
                                  frames) else None,
                              track_id=int(tid), score=s,
                              class_name=cname(tid),
                              pixel_bbox=[x, y, x + w, y + h])))
    for tid in sorted({int(v) for v in tracks[:, 1]}):
        r = tracks[tracks[:, 1] == tid]
        r = r[np.argsort(r[:, 0], kind='stable')]
        xs, ys = pixel_to_map(transform, r[:, 2] + r[:, 4] / 2,
                              r[:, 3] + r[:, 5] / 2)
        coords = [[float(a), float(b)] for a, b in zip(xs, ys)]
        geom = dict(type='LineString', coordinates=coords) if len(
            coords) > 1 else dict(type='Point', coordinates=coords[0])
        feats.append(dict(type='Feature', geometry=geom, properties=dict(
            kind='track', track_id=tid, first_frame=int(r[0, 0]),
            last_frame=int(r[-1, 0]), num_boxes=len(r),
            class_name=cname(tid))))
    fc = dict(type='FeatureCollection', features=feats)
    member = crs_member(crs_wkt)
    if member is not None:
        fc['crs'] = member
    return fc


def infer_tracking(args) -> TrackResult:
    """The ``tools/infer.py`` branch for tracking configs (``args`` from its
    parser): refuses the options of scene inference, runs
    :class:`RSTrackInferencer`, prints one summary line."""
    import sys

    from mmringmoe.engine import cli
    for opt, given in (('INPUT2', args.input2), ('--sar', args.sar),
                       ('--crop', args.crop), ('--overlap', args.overlap),
                       ('--probs', args.probs), ('--show', args.show)):
        if given:
            hint = ' (use --show-dir DIR for rendered frames)' \
                if opt == '--show' else ''
            raise cli.UserError(f'{opt} is not an option of tracking: give '
                                f'a folder of frames or a video{hint}')
    try:
        cfg = cli.load_config(args.config)
        inferencer = RSTrackInferencer(cfg, args.checkpoint,
                                       device=args.device, stats=args.stats)
        result = inferencer(args.input, out=args.out,
                            show_dir=getattr(args, 'show_dir', None),
                            postprocess=not getattr(args, 'no_postprocess',
                                                    False),
                            overwrite=args.force,
                            progress=not args.quiet)
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        raise cli.UserError(str(e).strip().splitlines()[0]) from e
    ids = len({int(v) for v in result.tracks[:, 1]})
    summary = (f'tracking: {result.num_frames} frames, {ids} tracks, '
               f'{len(result.tracks)} boxes -> {args.out}')
    if result.geojson:
        summary += f'; GeoJSON {result.geojson}'
    if result.show_dir:
        summary += f'; rendered frames in {result.show_dir}'
    print(summary)
    if result.geo_note:
        print(f'note: {result.geo_note}', file=sys.stderr)
    return result


__all__ = ['RSTrackInferencer', 'TrackResult', 'FrameSequence',
           'natural_key', 'is_tracking_config', 'track_color',
           'write_mot_txt', 'tracks_geojson', 'infer_tracking', 'FRAME_EXTS',
           'VIDEO_EXTS']
