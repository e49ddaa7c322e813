"""The window reader hands the pipeline the pixels the loader it replaces
would produce on the same file: band order (BGR / file order), colour
conversion (``color_type``), dtype and ``to_float32``.

Table-driven over (task, loader config, file): the reference is the real
loader transform (mmcv's ``LoadImageFromFile``, also under the mmseg / mmdet /
mmpretrain scopes; mmseg's and mmdet's ``LoadImageFromNDArray`` on
``mmcv.imread``'s array; our ``LoadRSImageFromFile``,
``LoadBitemporalImageFromFile``, ``LoadOptSARPair``, ``LoadComplexSAR``) run
on the generated file; a change detection pair read by an mmcv loader is each
date as that loader reads it, date 1 first. Files are generated with distinct
values per band (band b in [80 b, 80 b + 60)), so any band permutation or
grey conversion shows. Loaders scene inference does not replace are refused
in one line naming them."""
import warnings

import numpy as np
import pytest

H, W = 24, 30
WINDOW = (3, 5, 16, 20)  # row, col, height, width: not at the origin


def _bands(count, dtype='uint8', seed=0):
    rng = np.random.default_rng(seed)
    arr = np.stack([rng.integers(80 * b, 80 * b + 60, (H, W))
                    for b in range(count)], -1)
    if dtype == 'uint16':
        arr = arr * 251 + 7
    return arr.astype(dtype)


def _write(path, arr, **kw):
    import cv2
    import rasterio
    path = str(path)
    if path.endswith(('.png', '.jpg')):
        img = arr[..., ::-1] if arr.shape[2] == 3 else arr[..., 0]
        assert cv2.imwrite(path, np.ascontiguousarray(img))
        return path
    prof = dict(driver='GTiff', height=H, width=W, count=arr.shape[2],
                dtype=str(arr.dtype), compress='deflate',
                crs='EPSG:32633',
                transform=rasterio.Affine(10, 0, 5e5, 0, -10, 4e6))
    prof.update(kw)
    with rasterio.open(path, 'w', **prof) as ds:
        ds.write(np.moveaxis(arr, 2, 0))
    return path


def _files(tmp, kind, n=1):
    """``n`` generated files of ``kind``: 'rgb.tif', 'rgb.png', 'rgb.jpg',
    'grey.tif', 'grey.png', 'ms.tif' (4 bands, uint8: GDAL flags the 4th
    alpha), 'ms16.tif', 'rgb16.tif', 'rgba.tif' (alpha 0 in the 7 left
    columns, else 255), 'cint16.tif'."""
    out = []
    for i in range(n):
        stem, ext = kind.split('.')
        path = tmp / f'{stem}{i}.{ext}'
        if stem == 'cint16':
            from mmringmoe.datasets.transforms import write_complex_int16_tiff
            pairs = np.random.default_rng(i).integers(
                -900, 900, (H, W, 4, 2), dtype=np.int16)
            write_complex_int16_tiff(str(path), pairs)
            out.append(str(path))
            continue
        count = dict(rgb=3, grey=1, ms=4, rgb16=3, ms16=4, rgba=4)[stem]
        arr = _bands(count, 'uint16' if stem.endswith('16') else 'uint8',
                     seed=i)
        if stem == 'rgba':  # a true alpha: transparent left columns
            arr[..., 3] = 255
            arr[:, :7, 3] = 0
        out.append(_write(path, arr))
    return out


def _reference(load_cfg, paths):
    """What the replaced loader itself gives on the files: ``(H, W, C)``."""
    from mmengine.registry import TRANSFORMS
    import mmcv
    import mmdet.datasets  # noqa: F401  (registers mmdet's loaders)
    import mmpretrain.datasets  # noqa: F401
    import mmseg.datasets  # noqa: F401

    import mmringmoe  # noqa: F401
    from mmengine.registry import DefaultScope
    cfg = dict(load_cfg)
    name = cfg['type'].split('.')[-1]
    # under a scope of its own, 'mmdet.X' finds mmcv's X in mmdet's parent
    # (mmengine searches no parent for a key of the current default scope)
    with DefaultScope.overwrite_default_scope('mmringmoe'):
        t = TRANSFORMS.build(cfg)
    if name == 'LoadImageFromNDArray':
        def one(p):
            img = mmcv.imread(p, flag=cfg.get('color_type', 'color'),
                              backend=cfg.get('imdecode_backend', 'cv2'))
            return t.transform(dict(img=img))['img']
    elif name == 'LoadImageFromFile':
        def one(p):
            return t.transform(dict(img_path=p))['img']
    else:
        one = None
    if one is not None:
        imgs = [one(p) for p in paths]
        imgs = [i[..., None] if i.ndim == 2 else i for i in imgs]
        return np.concatenate(imgs, 2)  # change detection: date 1 first
    if name == 'LoadOptSARPair':
        return t.transform(dict(img_path=paths[0], sar_path=paths[1]))['img']
    if name == 'LoadBitemporalImageFromFile':
        return t.transform(dict(img_path=paths[0], img_path2=paths[1]))['img']
    return t.transform(dict(img_path=paths[0]))['img']


def _window_pixels(load_cfg, task, modality, paths, tmp_path=None):
    """The image the window reader hands the pipeline for ``WINDOW``: the
    loader of ``_roles_and_loader`` (as ``describe_model`` and the tracking
    inferencer build it), the scene checked and read as ``RSInferencer``
    does (tracking: frames read as ``RSTrackInferencer`` does)."""
    from mmengine.config import Config

    from mmringmoe.apis.model_spec import _roles_and_loader, model_dtypes
    from mmringmoe.apis.scene import build_scene
    cfg = Config(dict(model=dict(backbone=dict(modalities=[modality]))))
    roles, loader = _roles_and_loader(dict(load_cfg), cfg, {},
                                      'detection' if task == 'tracking'
                                      else task, None)
    loader.dtypes = model_dtypes(load_cfg, roles, {})
    if task == 'change_detection' or len(roles) == 2 and \
            roles[0].role == 'date1':
        inputs = tuple(paths)
    elif roles[0].role == 'opt':
        inputs = {'opt': paths[0], 'sar_l2': paths[1]}
    else:
        inputs = paths[0]
    scene = build_scene(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # unknown training dtype: a warning
        loader.check(scene)
    if task == 'tracking':
        from mmringmoe.apis.track_inferencer import FrameSequence
        import shutil
        frames = tmp_path / 'frames'
        frames.mkdir()
        ext = paths[0].rsplit('.', 1)[1]
        shutil.copy(paths[0], frames / f'f_1.{ext}')
        from types import SimpleNamespace

        from mmringmoe.apis.track_inferencer import RSTrackInferencer
        seq = FrameSequence(str(frames))
        decoder = RSTrackInferencer.jpeg_decoder(SimpleNamespace(
            loader=loader, _seq_shape=(seq.height, seq.width)))
        _, _, arr, _ = next(iter(seq.frames(decoder)))
        img = loader({'img': arr})['img']
        r, c, h, w = WINDOW
        return img[r:r + h, c:c + w]
    arrays, _ = scene.read(WINDOW)
    return loader(arrays)['img']


MMCV = 'LoadImageFromFile'
TASKS = ('segmentation', 'depth', 'detection', 'classification', 'tracking')
# (loader config, modality, file kind)
SINGLE = [
    (dict(type=MMCV), 'opt', 'rgb.tif'),
    (dict(type=MMCV), 'opt', 'rgb.png'),
    (dict(type=MMCV), 'opt', 'rgb.jpg'),   # decoded whole by the loader
    (dict(type='mmseg.LoadImageFromFile'), 'opt', 'rgb.tif'),
    (dict(type='mmdet.LoadImageFromFile'), 'opt', 'rgb.tif'),
    (dict(type='mmpretrain.LoadImageFromFile'), 'opt', 'rgb.tif'),
    (dict(type=MMCV, to_float32=True), 'opt', 'rgb.tif'),
    (dict(type=MMCV, imdecode_backend='pillow'), 'opt', 'rgb.png'),
    (dict(type=MMCV, imdecode_backend='pillow'), 'opt', 'rgb.jpg'),
    (dict(type=MMCV, color_type='color_ignore_orientation'), 'opt',
     'rgb.tif'),
    (dict(type=MMCV), 'opt', 'rgba.tif'),  # decoded by the loader
    (dict(type=MMCV, imdecode_backend='pillow'), 'opt', 'rgba.tif'),
    (dict(type=MMCV, color_type='unchanged'), 'opt', 'rgb.tif'),
    (dict(type=MMCV, color_type='unchanged', imdecode_backend='pillow'),
     'opt', 'rgb.png'),
    (dict(type=MMCV, color_type='unchanged'), 'ms', 'ms.tif'),
    (dict(type=MMCV, color_type='unchanged'), 'sar_l2', 'grey.tif'),
    (dict(type=MMCV, color_type='grayscale'), 'sar_l2', 'grey.png'),
    (dict(type=MMCV, color_type='grayscale'), 'opt', 'grey.tif'),
    (dict(type=MMCV, color_type='grayscale', imdecode_backend='pillow'),
     'sar_l2', 'grey.png'),
    (dict(type=MMCV, imdecode_backend='tifffile'), 'opt', 'rgb.tif'),
    (dict(type=MMCV, color_type='unchanged', imdecode_backend='tifffile'),
     'ms', 'ms.tif'),
    (dict(type=MMCV, imdecode_backend='tifffile'), 'opt', 'rgb16.tif'),
    (dict(type='mmseg.LoadImageFromNDArray'), 'opt', 'rgb.tif'),
    (dict(type='mmdet.LoadImageFromNDArray', to_float32=True), 'opt',
     'rgb.png'),
    (dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'), 'opt',
     'rgb.tif'),
    (dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'), 'opt',
     'rgb.jpg'),
    (dict(type='mmringmoe.LoadRSImageFromFile', modality='ms',
          to_float32=True), 'ms', 'ms.tif'),
    (dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2'), 'sar_l2',
     'grey.tif'),
    (dict(type='mmringmoe.LoadComplexSAR'), 'sar_l1', 'cint16.tif'),
]
CASES = [(task, cfg, mod, kind) for task in TASKS
         for cfg, mod, kind in SINGLE
         if not (task == 'tracking' and (kind.startswith(('cint16', 'ms'))
                                         or 'NDArray' in cfg['type']))]
# change detection pairs
CASES += [('change_detection', cfg, mod, kind) for cfg, mod, kind in [
    (dict(type=MMCV), 'opt', 'rgb.tif'),
    (dict(type=MMCV), 'opt', 'rgb.png'),
    (dict(type=MMCV), 'opt', 'rgb.jpg'),
    (dict(type='mmseg.LoadImageFromFile', to_float32=True), 'opt', 'rgb.tif'),
    (dict(type=MMCV, imdecode_backend='pillow'), 'opt', 'rgb.png'),
    (dict(type=MMCV, imdecode_backend='tifffile'), 'opt', 'rgb.tif'),
    (dict(type=MMCV, color_type='grayscale'), 'sar_l2', 'grey.png'),
    (dict(type='mmseg.LoadImageFromNDArray'), 'opt', 'rgb.tif'),
    (dict(type='mmringmoe.LoadBitemporalImageFromFile'), 'opt', 'rgb.tif'),
    (dict(type='mmringmoe.LoadBitemporalImageFromFile', to_float32=True),
     'opt', 'rgb.png'),
    (dict(type='mmringmoe.LoadBitemporalImageFromFile', modality='ms'), 'ms',
     'ms.tif'),
]]
# optical + SAR-L2 dict input
CASES += [('opt_sar', dict(type='mmringmoe.LoadOptSARPair'), 'opt',
           'rgb.tif+grey.tif'),
          ('opt_sar', dict(type='mmringmoe.LoadOptSARPair',
                           opt_bands=[2, 1, 0]), 'opt', 'ms16.tif+grey.tif')]


def _id(case):
    task, cfg, mod, kind = case
    extra = ','.join(f'{k}={v}' for k, v in cfg.items() if k != 'type')
    return f'{task}-{cfg["type"]}({extra})-{mod}-{kind}'


@pytest.mark.parametrize('case', CASES, ids=[_id(c) for c in CASES])
def test_window_pixels_equal_the_replaced_loader(case, tmp_path):
    task, cfg, mod, kind = case
    if '+' in kind:
        paths = [_files(tmp_path, k)[0] for k in kind.split('+')]
    else:
        paths = _files(tmp_path, kind, 2 if task == 'change_detection'
                       else 1)
    ref = _reference(cfg, paths)
    r, c, h, w = WINDOW
    ref = ref[r:r + h, c:c + w]
    got = _window_pixels(cfg, task, mod, paths, tmp_path)
    assert got.dtype == ref.dtype
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


def test_the_files_have_distinct_bands(tmp_path):
    """The check above can fail: every band of the generated files differs
    from every other (a swap or grey conversion would change the pixels),
    and mmcv's default loader does swap an RGB file (its output is not the
    file order)."""
    import rasterio
    path = _files(tmp_path, 'rgb.tif')[0]
    with rasterio.open(path) as ds:
        arr = np.moveaxis(ds.read(), 0, 2)
    for i in range(3):
        for j in range(i + 1, 3):
            assert (arr[..., i] != arr[..., j]).all()
    ref = _reference(dict(type=MMCV), [path])
    np.testing.assert_array_equal(ref, arr[..., ::-1])


@pytest.mark.parametrize('name', [
    'mmseg.LoadSingleRSImageFromFile', 'mmseg.LoadMultipleRSImageFromFile',
    'mmdet.LoadMultiChannelImageFromFiles',
    'mmseg.LoadBiomedicalImageFromFile', 'MultiImgLoadImageFromFile'])
def test_other_loaders_are_refused_in_one_line(name):
    from mmengine.config import Config

    from mmringmoe.apis.model_spec import _roles_and_loader
    cfg = Config(dict(model=dict(backbone=dict(modalities=['opt']))))
    for task in ('segmentation', 'change_detection'):
        with pytest.raises(ValueError) as err:
            _roles_and_loader(dict(type=name), cfg, {}, task, None)
        msg = str(err.value)
        assert name in msg and '\n' not in msg


@pytest.mark.parametrize('task', ['segmentation', 'change_detection'])
@pytest.mark.parametrize('cfg', [
    dict(type=MMCV, color_type='grayscale'),
    dict(type=MMCV, color_type='grayscale', imdecode_backend='pillow')])
def test_grey_conversion_of_a_colour_file_is_refused(task, cfg, tmp_path):
    """``color_type='grayscale'`` turns a colour file into one grey band with
    the decoder's own weights (the control: not any band of the file):
    refused in one line naming the loader and the file."""
    from mmringmoe.apis.scene import build_scene
    paths = _files(tmp_path, 'rgb.tif', 2)
    ref = _reference(cfg, paths[:1])
    import rasterio
    with rasterio.open(paths[0]) as ds:
        arr = np.moveaxis(ds.read(), 0, 2)
    assert all((ref[..., 0] != arr[..., b]).any() for b in range(3))
    with pytest.raises(ValueError) as err:
        _window_pixels(cfg, task, 'opt', paths)
    msg = str(err.value)
    assert 'LoadImageFromFile' in msg and 'grayscale' in msg
    assert 'rgb0.tif' in msg and '\n' not in msg


@pytest.mark.parametrize('task', ['segmentation', 'change_detection'])
def test_a_file_the_loader_does_not_decode_to_its_bands_is_refused(
        task, tmp_path):
    """OpenCV (``color_type='unchanged'``) decodes a 3-band uint16 GeoTIFF
    (photometric grey + 2 extra samples) to one channel (the reference):
    decoded by the loader, it no longer fits GDAL's 3 bands and is refused
    in one line naming the file, instead of GDAL's 3 bands going in."""
    cfg = dict(type=MMCV, color_type='unchanged')
    paths = _files(tmp_path, 'rgb16.tif', 2)
    assert _reference(cfg, paths[:1]).shape[2] == 1
    with pytest.raises(ValueError) as err:
        _window_pixels(cfg, task, 'opt', paths)
    msg = str(err.value)
    assert 'rgb160.tif' in msg and 'LoadImageFromFile' in msg
    assert '\n' not in msg


def test_change_pair_of_a_load_image_from_file_model_end_to_end(tmp_path):
    """A tiny BIT change detector whose test pipeline reads with mmcv's
    ``LoadImageFromFile`` (6-channel mean/std, no swap: it was trained on
    the two dates in BGR): the scene result equals the model's own
    prediction on the pair as that loader reads it (``cv2.imread`` of each
    date, stacked), not on the dates in file (RGB) order (the control, what
    the window reader gave before)."""
    import cv2

    import torch
    from mmseg.structures import SegDataSample

    from helpers import TINY_CHANNELS
    from inference_models import (build, paper_config, save_checkpoint,
                                  sync_to_bn)
    from mmringmoe.apis import RSInferencer
    cfg = paper_config('change_detection/'
                       'bit_ringmoe-opt-kc_1xb8-200e_levircd-256x256.py')
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    sync_to_bn(cfg.model)
    pipe = cfg.test_dataloader.dataset.pipeline
    idx = [i for i, t in enumerate(pipe)
           if 'LoadBitemporalImageFromFile' in t['type']]
    assert len(idx) == 1
    pipe[idx[0]] = dict(type='LoadImageFromFile')
    model = build(cfg)
    ckpt = save_checkpoint(model, str(tmp_path / 'bit.pth'),
                           classes=('unchanged', 'changed'),
                           palette=[[0, 0, 0], [255, 255, 255]])
    a = np.zeros((64, 64, 3), np.uint8)
    a[..., 0], a[..., 1], a[..., 2] = 20, 120, 230  # red, green, blue
    a[:, 32:] = (230, 120, 20)
    b = a.copy()
    b[16:48, 16:48] = (250, 40, 10)
    pa, pb = str(tmp_path / 'a.png'), str(tmp_path / 'b.png')
    for p, img in ((pa, a), (pb, b)):
        assert cv2.imwrite(p, img[..., ::-1].copy())
    res = RSInferencer(cfg, ckpt)((pa, pb), crop=64, overlap=0, probs=True)

    def probs(stacked):
        x = torch.from_numpy(stacked.transpose(2, 0, 1).copy())
        s = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                        ori_shape=(64, 64)))
        data = model.data_preprocessor(dict(inputs=[x], data_samples=[s]))
        with torch.no_grad():
            lg = model.encode_decode(
                data['inputs'], [d.metainfo for d in data['data_samples']])
        return torch.sigmoid(lg[0, 0]).numpy()
    ref = probs(np.concatenate([cv2.imread(pa), cv2.imread(pb)], 2))
    ctrl = probs(np.concatenate([a, b], 2))
    got = res.probs[-1]
    np.testing.assert_allclose(got, ref, atol=2e-6)
    assert np.abs(got - ctrl).max() > 1e-3


def test_tracking_frames_the_loader_does_not_decode_to_their_bands(
        tmp_path):
    """Tracking frames read as the tracking inferencer reads them: a 3-band
    uint16 TIFF frame that OpenCV (``unchanged``) decodes to one channel
    (the reference) is decoded by the loader and refused in one line, not
    read as GDAL's 3 bands."""
    import shutil
    from types import SimpleNamespace

    from mmengine.config import Config

    from mmringmoe.apis.model_spec import _roles_and_loader
    from mmringmoe.apis.track_inferencer import (FrameSequence,
                                                 RSTrackInferencer)
    cfg = dict(type=MMCV, color_type='unchanged')
    path = _files(tmp_path, 'rgb16.tif')[0]
    assert _reference(cfg, [path]).shape[2] == 1
    frames = tmp_path / 'frames'
    frames.mkdir()
    shutil.copy(path, frames / 'f_1.tif')
    _, loader = _roles_and_loader(cfg, Config(dict(model=dict(backbone=dict(
        modalities=['opt'])))), {}, 'detection', None)
    seq = FrameSequence(str(frames))
    decoder = RSTrackInferencer.jpeg_decoder(SimpleNamespace(
        loader=loader, _seq_shape=(seq.height, seq.width)))
    with pytest.raises(ValueError) as err:
        next(iter(seq.frames(decoder)))
    msg = str(err.value)
    assert 'f_1.tif' in msg and '1 band' in msg and '\n' not in msg
