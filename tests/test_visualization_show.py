"""``tools/test.py --show-dir DIR [--show-interval N]``: one PNG per test
image for a tiny config of every task family, made from the sample's own
array; the drawn segmentation pixels are the palette colours of a known
prediction."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import downstream_data as dd
import helpers

SEG = osp.join(dd.ROOT, 'configs', 'segmentation')
CLS = osp.join(dd.ROOT, 'configs', 'classification')


@pytest.fixture(autouse=True)
def _fast_config_text():
    with dd.fast_config_text():
        yield


def init_checkpoint(cfg_file, path, edit=None):
    """Randomly initialised weights of the config's model (no training:
    the pictures only need a forward); ``edit(model)`` may set weights."""
    from mmengine.registry import MODELS, DefaultScope

    from mmringmoe.engine import cli
    cfg = cli.load_config(str(cfg_file))
    scope = cli.import_scope(cfg)
    cli.scope_prefixed_types(cfg)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if edit is not None:
        edit(model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)


def run_show(cfg_file, ckpt, tmp_path, interval=1):
    """tools/test.py CONFIG CKPT --show-dir --show-interval in-process;
    returns (metrics, sorted PNG paths)."""
    tool = helpers._tool('test')
    show = tmp_path / 'show'
    args = tool.parse_args([str(cfg_file), str(ckpt), '--work-dir',
                            str(tmp_path / 'test'), '--show-dir', str(show),
                            '--show-interval', str(interval)])
    args.cfg_options = helpers._options(cfg_file, None)
    metrics = tool.test(args)
    return metrics, sorted(glob.glob(str(show / '*.png')))


def _panel_origin(titles, widths, index):
    """(row, col) of panel ``index``'s image inside overlay.figure."""
    from mmringmoe.visualization.overlay import text_strip
    col = sum(w + 4 for w in widths[:index])
    row = text_strip([titles[index]], widths[index]).shape[0]
    return row, col


# ---------------------------------------------------------------- pixels
def test_drawn_segmentation_pixels_are_the_palette_colours(tmp_path):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmringmoe.engine.hooks.rs_visualization_hook import \
        RSVisualizationHook
    from mmringmoe.visualization import DisplayImage, PredictionPainter
    pred = np.zeros((8, 8), np.int64)
    pred[:4, 4:], pred[4:, :4], pred[4:, 4:] = 1, 2, 3
    gt = pred.copy()
    gt[0, 0] = 255  # ignore: not painted
    palette = [(10, 20, 30), (200, 0, 0), (0, 200, 0), (0, 0, 200)]
    disp = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
    sample = SegDataSample(metainfo=dict(
        img_path='/data/tile_7.tif', display=(DisplayImage(disp, 'x'), ),
        display_valid_mask=None))
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred)[None])
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt)[None])
    for alpha in (1.0, 0.5):
        hook = RSVisualizationHook(str(tmp_path / str(alpha)), alpha=alpha)
        hook._painter = PredictionPainter(
            dict(classes=('a', 'b', 'c', 'd'), palette=palette), alpha=alpha,
            min_size=128)
        path = hook.paint_one(sample)
        assert osp.basename(path) == '00000_tile_7.png'
        png = np.asarray(Image.open(path).convert('RGB'))
        k = 16  # 8 px upscaled to 128
        titles = ['image', 'ground truth', 'prediction']
        r, c = _panel_origin(titles, [128] * 3, 2)
        drawn = png[r:r + 128, c:c + 128].astype(np.int64)
        colour = np.asarray(palette)[np.kron(pred, np.ones((k, k), int))]
        image = np.kron(disp, np.ones((k, k, 1), np.uint8)).astype(np.int64)
        # mmseg's blend: (image * (1 - alpha) + colour * alpha), truncated
        expected = np.floor(image * (1 - alpha) + colour * alpha)
        np.testing.assert_array_equal(drawn, expected)
        if alpha == 1.0:
            for cls, (y, x) in enumerate([(0, 0), (0, 64), (64, 0),
                                          (64, 64)]):
                assert drawn[y + 20, x + 20].tolist() == list(palette[cls])
        # the image panel is the display image itself
        r0, c0 = _panel_origin(titles, [128] * 3, 0)
        np.testing.assert_array_equal(png[r0:r0 + 128, c0:c0 + 128], image)
        # ground truth: the ignored pixel keeps image * (1 - alpha)
        r1, c1 = _panel_origin(titles, [128] * 3, 1)
        np.testing.assert_array_equal(
            png[r1 + 3, c1 + 3], np.floor(image[3, 3] * (1 - alpha)))


def test_nodata_pixels_keep_the_nodata_colour(tmp_path):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmringmoe.visualization import (NODATA_COLOR, PredictionPainter,
                                         display_image)
    img = np.random.default_rng(1).integers(0, 4000, (8, 8, 4), np.uint16)
    valid = np.ones((8, 8), bool)
    valid[:2] = False
    d = display_image(img, 'ms', valid)
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.zeros(1, 8, 8, dtype=torch.long))
    fig = PredictionPainter(dict(classes=('a', 'b'), palette=[(0, 0, 0),
                                                              (9, 9, 9)]),
                            min_size=128).paint(sample, [d], valid)
    r, c = _panel_origin(['image', 'prediction'], [128, 128], 1)
    assert (fig[r:r + 32, c:c + 128] == NODATA_COLOR).all()
    assert not (fig[r + 32:r + 128, c:c + 128] == NODATA_COLOR).all(-1).any()


# -------------------------------------------------- end to end, iSAID
@pytest.fixture(scope='module')
def isaid_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('iSAID'))
    dd.make_isaid(root, n=3)
    return root


def test_show_dir_paints_every_image_with_a_known_prediction(isaid_root,
                                                            tmp_path):
    """Decode head forced to class 5 everywhere: every pixel of the
    prediction panel is mmseg's blend of the PNG's own pixel with
    palette[5]; --show-interval 2 paints images 0 and 2 of 3."""
    cfg = dd.tiny_config(osp.join(SEG, 'upernet_ringmoe-opt-kc_8xb1-80k_'
                                  'isaid-896x896.py'), isaid_root,
                         str(tmp_path / 'isaid.py'), task='seg')

    def class_5(model):
        conv = model.decode_head.conv_seg
        torch.nn.init.zeros_(conv.weight)
        conv.bias.data[:] = -10.0
        conv.bias.data[5] = 10.0

    ckpt = init_checkpoint(cfg, tmp_path / 'c5.pth', class_5)
    metrics, pngs = run_show(cfg, ckpt, tmp_path)
    assert 'mIoU' in metrics
    val = sorted(glob.glob(osp.join(isaid_root, 'img_dir', 'val', '*.png')))
    assert len(pngs) == len(val) == 3
    from mmseg.datasets import iSAIDDataset
    pal = np.asarray(iSAIDDataset.METAINFO['palette'][5])
    for png_path, img_path in zip(pngs, val):
        stem = osp.splitext(osp.basename(img_path))[0]
        assert osp.basename(png_path).endswith(stem + '.png')
        png = np.asarray(Image.open(png_path).convert('RGB'))
        img = np.asarray(Image.open(img_path).convert('RGB')).astype(float)
        img = np.kron(img, np.ones((4, 4, 1)))  # 64 px -> 256
        titles = ['image', 'ground truth', 'prediction']
        r, c = _panel_origin(titles, [256] * 3, 2)
        np.testing.assert_array_equal(png[r:r + 256, c:c + 256],
                                      np.floor(img * 0.5 + pal * 0.5))
        r0, c0 = _panel_origin(titles, [256] * 3, 0)
        np.testing.assert_array_equal(png[r0:r0 + 256, c0:c0 + 256], img)
    _, every2 = run_show(cfg, ckpt, tmp_path / 'n2', interval=2)
    assert [osp.basename(p)[:5] for p in every2] == ['00000', '00002']


# ------------------------------------------ end to end, every task family
def _seg_family(config, maker, tmp_path):
    root = str(tmp_path / 'data')
    if maker in ('sarsegl1', 'whu'):
        getattr(dd, {'sarsegl1': 'make_sarsegl1',
                     'whu': 'make_whu_opt_sar'}[maker])(
            root, str(tmp_path / 'raw'))
    else:
        getattr(dd, maker)(root)
    cfg = dd.tiny_config(osp.join(SEG, config), root,
                         str(tmp_path / 'cfg.py'), task='seg')
    return cfg


SEG_FAMILIES = {
    'ms': ('upernet_ringmoe-ms-kc_8xb1-16k_dynamicearthnet-planet-'
           '1024x1024.py', 'make_dynamicearthnet'),
    'sar_l1': ('upernet_ringmoe-sarl1-kc_4xb1-20k_sarsegl1-500x500.py',
               'sarsegl1'),
    'sar_l2': ('upernet_ringmoe-sarl2-kc_8xb1-80k_air-polsar-seg-512x512.py',
               'make_air_polsar_seg'),
    'opt_sar': ('upernet_ringmoe-opt-sarl2-kc_8xb2-80k_whu-opt-sar-'
                '256x256.py', 'whu'),
}


def _num_test_images(cfg_file):
    from mmengine.registry import DATASETS, DefaultScope

    from mmringmoe.engine import cli
    cfg = cli.load_config(str(cfg_file))
    scope = cli.import_scope(cfg)
    cli.scope_prefixed_types(cfg)
    with DefaultScope.overwrite_default_scope(scope):
        ds = DATASETS.build(cfg.test_dataloader.dataset)
    if hasattr(ds, 'get_data_info') and 'images' in ds.get_data_info(0):
        return sum(len(ds.get_data_info(i)['images'])
                   for i in range(len(ds)))  # videos: frames
    return len(ds)


def _check_pngs(pngs, n):
    assert len(pngs) == n, (len(pngs), n)
    for p in pngs:
        img = np.asarray(Image.open(p).convert('RGB'))
        assert img.shape[0] >= 64 and img.shape[1] >= 64
        assert img.std() > 0  # not a blank picture


@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(SEG_FAMILIES))
def test_show_dir_segmentation_families(family, tmp_path):
    config, maker = SEG_FAMILIES[family]
    cfg = _seg_family(config, maker, tmp_path)
    ckpt = init_checkpoint(cfg, tmp_path / 'init.pth')
    _, pngs = run_show(cfg, ckpt, tmp_path)
    _check_pngs(pngs, _num_test_images(cfg))


@pytest.mark.slow
def test_show_dir_classification(tmp_path):
    from mmengine.config import Config

    from mmringmoe.datasets import cls_split
    config = osp.join(CLS, 'ringmoe-opt-kc_16xb64-200e_nwpu-resisc45-tr10-'
                      '224px.py')
    classes = Config.fromfile(osp.join(
        CLS, '_base_', 'nwpu-resisc45_tr10_224px.py')).classes
    root = tmp_path / 'data'
    dd.make_scene_folders(str(root / 'NWPU-RESISC45'), classes)
    cls_split.main([str(root / 'NWPU-RESISC45'), '--train-ratio', '0.1'])
    cfg = dd.tiny_config(config, str(root), str(tmp_path / 'cfg.py'),
                         task='cls')
    ckpt = init_checkpoint(cfg, tmp_path / 'init.pth')
    _, pngs = run_show(cfg, ckpt, tmp_path)
    _check_pngs(pngs, 4)  # tiny_config keeps 4 test images


@pytest.mark.slow
@pytest.mark.parametrize('config,maker', [
    ('configs/detection/faster-rcnn_ringmoe-opt-kc_fpn_8xb2-12e_dior-'
     '800x800.py', 'dior'),
    ('configs/detection/faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_hrsid-'
     '800x800.py', 'hrsid'),
    ('configs/rotated_detection/oriented-rcnn-le90_ringmoe-opt-kc_fpn_8xb2-'
     '12e_dior-r-800x800.py', 'dior'),
])
def test_show_dir_detection(config, maker, tmp_path):
    import test_det_configs as tdc
    root = str(tmp_path / 'data') + '/'
    tdc.MAKERS[maker](root)
    cfg_file = str(tmp_path / 'cfg.py')
    tdc.tiny_config(config, root, cfg_file)
    ckpt = init_checkpoint(cfg_file, tmp_path / 'init.pth')
    _, pngs = run_show(cfg_file, ckpt, tmp_path)
    _check_pngs(pngs, _num_test_images(cfg_file))


@pytest.mark.slow
def test_show_dir_change_detection(tmp_path):
    import test_cd_bit as cd
    from cd_depth_fewshot_helpers import load_config, single_process_loaders
    cfg = load_config(cd.LEVIR)
    data_root = tmp_path / 'data'
    cd._make_cd_data(data_root, 'label', '.png', 1)
    cfg = cd._tiny(cfg, data_root)
    single_process_loaders(cfg)
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    ckpt = init_checkpoint(cfg_file, tmp_path / 'init.pth')
    _, pngs = run_show(cfg_file, ckpt, tmp_path)
    _check_pngs(pngs, 2)


@pytest.mark.slow
def test_show_dir_depth(tmp_path, monkeypatch):
    import test_depth_binsformer as dp
    from cd_depth_fewshot_helpers import load_config, single_process_loaders

    from mmringmoe.datasets.depth import VaihingenDepthDataset
    cfg = load_config(dp.VAIHINGEN)
    monkeypatch.setattr(VaihingenDepthDataset, 'SPLITS',
                        dict(train=(1, 3), test=(2, 4)))
    data_root = tmp_path / 'data'
    dp._write_tiles(data_root, dp._vaihingen_names((1, 2, 3, 4)), 'top',
                    'dsm')
    cfg = dp._tiny(cfg, data_root)
    single_process_loaders(cfg)
    cfg_file = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_file))
    ckpt = init_checkpoint(cfg_file, tmp_path / 'init.pth')
    _, pngs = run_show(cfg_file, ckpt, tmp_path)
    _check_pngs(pngs, 2)


@pytest.mark.slow
def test_show_dir_tracking(tmp_path):
    """Stage-2 ByteTrack config over a generated 10-frame video with the
    oracle detector of test_track_bytetrack (each frame's ground-truth
    boxes): one PNG per frame."""
    import test_track_bytetrack as tt
    tt._register_oracle_detector()
    root = str(tmp_path / 'data') + '/'
    for split in ('train', 'test'):
        tt.write_video(osp.join(root, split, f'{split}-01'), 10,
                       [(3, 1, tt.moving(10, 30, 24, 20))])
    tt._convert(root)
    cfg_file = str(tmp_path / 'oracle.py')
    cfg = tt.tiny_track_config(tt.STAGE2, root, cfg_file, load_from=None)
    cfg.model.detector = dict(type='_OracleDetector')
    cfg.dump(cfg_file)
    ckpt = tmp_path / 'empty.pth'
    torch.save({'meta': {}, 'state_dict': {'detector.dummy': torch.zeros(1)}},
               ckpt)
    metrics, pngs = run_show(cfg_file, ckpt, tmp_path)
    assert metrics['motchallenge-metric/IDSW'] == 0
    _check_pngs(pngs, 10)


# ------------------------------------------ boxes reaching past the image
#: display image size (W, H) and boxes in its pixels: past the top-left
#: corner, past the bottom-right corner, inside.
VIEW_W, VIEW_H = 192, 144
HBOXES = ((-30., -20., 40., 30.), (130., 90., 230., 180.),
          (70., 60., 110., 85.))
#: rotated boxes (cx, cy, w, h, angle in radians), same three cases
RBOXES = ((10., 8., 60., 30., 0.5), (185., 138., 50., 40., -0.3),
          (80., 60., 40., 20., 0.7))


def _hbox_corners(b):
    x1, y1, x2, y2 = b
    return np.array([(x1, y1), (x2, y1), (x2, y2), (x1, y2)], float)


def _rbox_corners(b):
    """Corners of a rotated box, as mmrotate's rbox -> qbox."""
    cx, cy, w, h, t = b
    c, s = np.cos(t), np.sin(t)
    dx = np.array([-w, w, w, -w]) / 2
    dy = np.array([-h, -h, h, h]) / 2
    return np.stack([cx + dx * c - dy * s, cy + dx * s + dy * c], 1)


def _away_from_drawing(shape, polygons, anchors, margin=4.,
                       label=(100, 60)):
    """(H, W) bool: pixels whose centre is farther than ``margin`` from
    every polygon edge and outside the label rectangles (``label`` =
    width, height right/down of an anchor, moved into the image)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    near = np.zeros((h, w), bool)
    for poly in polygons:
        for p, q in zip(poly, np.roll(poly, -1, 0)):
            d = q - p
            t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) /
                        max(d @ d, 1e-9), 0, 1)
            near |= np.hypot(xx - p[0] - t * d[0],
                             yy - p[1] - t * d[1]) < margin
    for ax, ay in anchors:
        x0 = int(np.clip(np.floor(ax) - margin, 0, w))
        y0 = int(np.clip(np.floor(ay) - margin, 0, h))
        near[y0:max(int(ay) + label[1], 0), x0:max(int(ax) + label[0], 0)] \
            = True
    return ~near


def _past_edges_sample(kind):
    """Data sample of ``kind`` ('det', 'rot', 'track') with the boxes above
    as prediction (score 0.9) and, for det/rot, as ground truth."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    n = 3
    sample = DetDataSample()
    if kind == 'det':
        boxes = torch.tensor(HBOXES)
    elif kind == 'rot':
        from mmrotate.structures.bbox import RotatedBoxes
        boxes = RotatedBoxes(torch.tensor(RBOXES))
    else:
        boxes = torch.tensor(HBOXES)
    inst = InstanceData(bboxes=boxes, labels=torch.zeros(n, dtype=torch.long),
                        scores=torch.full((n, ), 0.9))
    if kind == 'track':
        inst.instances_id = torch.arange(1, n + 1)
        sample.pred_track_instances = inst
    else:
        sample.pred_instances = inst
        gt = InstanceData(bboxes=boxes, labels=torch.zeros(n,
                                                           dtype=torch.long))
        sample.gt_instances = gt
    return sample


@pytest.mark.parametrize('kind', ['det', 'rot', 'track'])
@pytest.mark.parametrize('k', [1, 2])
def test_painted_boxes_past_the_image_keep_the_image_view(kind, k):
    """PredictionPainter (tools/test.py --show-dir, make_gallery) with
    boxes reaching past the image: matplotlib >= 3.11 autoscaled the view to
    the boxes (Axes.add_collection in mmengine's draw_bboxes /
    draw_polygons) and the image shrank inside white. Every panel is the
    image at its (upscaled) size; every pixel away from the outlines and
    labels is the image's own."""
    from mmringmoe.visualization import DisplayImage, PredictionPainter
    from mmringmoe.visualization.overlay import text_strip
    rng = np.random.default_rng(1)
    disp = rng.integers(0, 256, (VIEW_H, VIEW_W, 3), dtype=np.uint8)
    painter = PredictionPainter(dict(classes=('ship', )),
                                min_size=VIEW_H * k)
    sample = _past_edges_sample(kind)
    fig = painter.paint(sample, [DisplayImage(disp, 'test display')])
    image = np.kron(disp, np.ones((k, k, 1), np.uint8))
    h, w = image.shape[:2]
    if kind == 'rot':
        polys = [_rbox_corners((b[0] * k, b[1] * k, b[2] * k, b[3] * k,
                                b[4])) for b in RBOXES]
        anchors = [(b[0] * k, b[1] * k) for b in RBOXES]  # label at centre
    else:
        polys = [_hbox_corners(np.array(b) * k) for b in HBOXES]
        anchors = [(max(b[0] * k, 0), max(b[1] * k, 0)) for b in HBOXES]
    # the case under test: outlines past all four edges
    allc = np.concatenate(polys)
    assert allc.min(0).max() < 0 and (allc.max(0) > (w, h)).all()
    titles = (['tracks (score > 0.3)'] if kind == 'track' else
              ['ground truth', 'prediction (score > 0.3)'])
    assert fig.shape[1] == len(titles) * w + 4 * (len(titles) - 1)
    away = _away_from_drawing((h, w), polys, anchors)
    assert away.mean() > 0.4
    for i, title in enumerate(titles):
        r, c = _panel_origin(titles, [w] * len(titles), i)
        assert r == text_strip([title], w).shape[0]
        panel = fig[r:r + h, c:c + w]
        np.testing.assert_array_equal(panel[away], image[away])
        # the inside box is drawn: its outline's bottom edge is not image
        x1, y1 = (polys[2].min(0) + 0.5).astype(int)
        x2, y2 = (polys[2].max(0) - 0.5).astype(int)
        if kind != 'rot':
            row = panel[y2, x1 + 2:x2 - 2].astype(int)
            assert (np.abs(row - image[y2, x1 + 2:x2 - 2]).max(1)
                    > 20).mean() > 0.8
