"""Units of the segmentation experiments: paper metrics against hand
computation and mmseg, optical/SAR pair alignment, converters, Convpass
freezing, and the clear errors on bad input."""
import os.path as osp

import numpy as np
import pytest
import torch

import downstream_data as dd


# ------------------------------------------------------------------ metrics
def test_seg_metrics_match_hand_computation_and_mmseg():
    from mmseg.evaluation.metrics import IoUMetric

    from mmringmoe.evaluation.metrics import RSSegMetric
    from mmringmoe.evaluation.metrics.rs_seg_metric import \
        seg_metrics_from_areas
    gt = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 2]])
    areas = IoUMetric.intersect_and_union(pred, gt, 3, 255)
    out = seg_metrics_from_areas(*[a.numpy() for a in areas],
                                 ('a', 'b', 'c'))
    # hand: class a TP1 FP1 FN1, b TP2 FP1 FN0, c TP2 FP0 FN1; 7 labelled px
    iou = [1 / 3, 2 / 3, 2 / 3]
    f1 = [2 / 4, 4 / 5, 4 / 5]
    acc = [1 / 2, 2 / 2, 2 / 3]
    assert out['OA'] == pytest.approx(round(5 / 7 * 100, 2))
    assert out['mIoU'] == pytest.approx(round(np.mean(iou) * 100, 2))
    assert out['mF1'] == pytest.approx(round(np.mean(f1) * 100, 2))
    assert out['mAcc'] == pytest.approx(round(np.mean(acc) * 100, 2))
    assert out['IoU.b'] == pytest.approx(round(2 / 3 * 100, 2))
    ref = IoUMetric.total_area_to_metrics(*areas, ['mIoU', 'mFscore'])
    assert out['mF1'] == pytest.approx(np.nanmean(ref['Fscore']) * 100,
                                       abs=0.01)
    assert out['OA'] == pytest.approx(ref['aAcc'] * 100, abs=0.01)
    # classes left out of the results (Potsdam clutter, AIR-PolSAR tiny ones)
    sub = seg_metrics_from_areas(*[a.numpy() for a in areas],
                                 ('a', 'b', 'c'), report_classes=('b', 'c'))
    assert sub['mIoU'] == pytest.approx(round(2 / 3 * 100, 2))
    assert sub['OA'] == pytest.approx(round(4 / 5 * 100, 2))
    assert 'IoU.a' not in sub
    with pytest.raises(ValueError, match='not in the data set classes'):
        seg_metrics_from_areas(*[a.numpy() for a in areas], ('a', 'b', 'c'),
                               report_classes=('clutter', ))
    metric = RSSegMetric(report_classes=('b', 'c'))
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    assert metric.compute_metrics([areas])['mIoU'] == sub['mIoU']


def test_scene_oa_is_overall_accuracy():
    from mmringmoe.evaluation.metrics import SceneOA
    m = SceneOA()
    results = [
        dict(gt_label=torch.tensor([t]), pred_score=torch.eye(3)[p])
        for t, p in ((0, 0), (1, 2), (2, 2), (1, 1))
    ]
    assert m.compute_metrics(results) == {'OA': pytest.approx(75.0)}


# ------------------------------------------------------------ pair alignment
def _pair_files(tmp_path, size=40):
    """Optical whose first band equals the SAR image, so alignment is
    checkable pixel by pixel after any geometric transform."""
    rng = np.random.default_rng(0)
    opt = rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)
    sar = opt[..., :1].copy()
    dd._tif(str(tmp_path / 'opt.tif'), opt, photometric='rgb')
    dd._tif(str(tmp_path / 'sar.tif'), sar[..., 0])
    lbl = rng.integers(0, 7, opt.shape[:2]).astype(np.uint8)
    dd._png(str(tmp_path / 'lbl.png'), lbl)
    return dict(img_path=str(tmp_path / 'opt.tif'),
                sar_path=str(tmp_path / 'sar.tif'),
                seg_map_path=str(tmp_path / 'lbl.png'),
                reduce_zero_label=False, seg_fields=[], label_map=None), opt


def _pipeline(flip_prob):
    from mmcv.transforms import Compose
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmringmoe  # noqa: F401
    return Compose([
        dict(type='mmringmoe.LoadOptSARPair'),
        dict(type='mmringmoe.LoadSegAnnotations', num_classes=7),
        dict(type='RandomResize', scale=(32, 32), ratio_range=(0.5, 2.0),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(24, 24)),
        dict(type='RandomFlip', prob=flip_prob, direction='horizontal'),
    ])


def test_pair_stays_aligned_through_augmentation(tmp_path):
    sample, opt = _pair_files(tmp_path)
    for seed in range(4):
        np.random.seed(seed)
        out = _pipeline(1.0)(dict(sample))
        assert out['flip'] is True
        img = out['img']
        assert img.shape[2] == 4
        assert out['modality_channels'] == (('opt', 3), ('sar_l2', 1))
        # SAR band moved exactly like the optical band it was copied from
        np.testing.assert_allclose(img[..., 3], img[..., 0], atol=1e-4)
        assert img[..., 3].std() > 0


def test_flip_both_equals_flipped_unflipped_pair(tmp_path):
    sample, opt = _pair_files(tmp_path)
    from mmcv.transforms import Compose
    load = Compose([dict(type='mmringmoe.LoadOptSARPair')])
    flip = Compose([
        dict(type='mmringmoe.LoadOptSARPair'),
        dict(type='RandomFlip', prob=1.0, direction='horizontal')
    ])
    a = load(dict(sample))['img']
    b = flip(dict(sample))['img']
    np.testing.assert_array_equal(b, a[:, ::-1])
    np.testing.assert_array_equal(a[..., :3], opt.astype(np.float32))


def test_pair_loader_band_selection(tmp_path):
    from mmringmoe.datasets.seg_transforms import LoadOptSARPair
    rng = np.random.default_rng(0)
    rgbn = rng.integers(0, 255, (8, 8, 4), dtype=np.uint8)
    sar3 = np.repeat(rng.integers(0, 255, (8, 8, 1), dtype=np.uint8), 3, 2)
    dd._tif(str(tmp_path / 'o.tif'), rgbn, photometric='minisblack',
            planarconfig='contig')
    dd._tif(str(tmp_path / 's.tif'), sar3, photometric='rgb')
    paths = dict(img_path=str(tmp_path / 'o.tif'),
                 sar_path=str(tmp_path / 's.tif'))
    with pytest.raises(ValueError, match=r"o\.tif.*expected 3 bands"):
        LoadOptSARPair()(dict(paths))
    with pytest.raises(ValueError, match=r"s\.tif.*sar_l2.*expected 1"):
        LoadOptSARPair(opt_bands=[0, 1, 2])(dict(paths))
    out = LoadOptSARPair(opt_bands=[2, 1, 0], sar_band=0)(dict(paths))
    np.testing.assert_array_equal(out['img'][..., :3], rgbn[..., [2, 1, 0]])
    np.testing.assert_array_equal(out['img'][..., 3], sar3[..., 0])


def _dual_model():
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import mmringmoe  # noqa: F401
    from helpers import tiny_backbone
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='mmringmoe.DualModalityEncoderDecoder',
        backbone=tiny_backbone(moe_mode='dense'),
        sar_backbone=tiny_backbone(modalities=('sar_l2', ), moe_mode='dense'),
        fusion_norm_cfg=dict(type='BN'),
        data_preprocessor=dict(type='SegDataPreProcessor'),
        decode_head=dict(
            type='UPerHead', in_channels=dd.TINY_CHANNELS,
            in_index=[0, 1, 2, 3], channels=16, num_classes=7,
            dropout_ratio=0., norm_cfg=dict(type='BN'),
            loss_decode=dict(type='CrossEntropyLoss')))).eval()


def _samples(gt):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for g in gt:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=g[None])
        s.set_metainfo(dict(img_shape=g.shape, pad_shape=g.shape,
                            ori_shape=g.shape))
        out.append(s)
    return out


def test_flipping_one_modality_only_changes_the_loss():
    model = _dual_model()
    torch.manual_seed(1)
    x = torch.randn(2, 4, 64, 64)
    gt = torch.randint(0, 7, (2, 64, 64))
    with torch.no_grad():
        base = model.loss(x, _samples(gt))['decode.loss_ce']
        sar_flipped = x.clone()
        sar_flipped[:, 3:] = sar_flipped[:, 3:].flip(-1)
        opt_flipped = x.clone()
        opt_flipped[:, :3] = opt_flipped[:, :3].flip(-1)
        again = model.loss(x, _samples(gt))['decode.loss_ce']
        l_sar = model.loss(sar_flipped, _samples(gt))['decode.loss_ce']
        l_opt = model.loss(opt_flipped, _samples(gt))['decode.loss_ce']
    assert torch.equal(base, again)
    assert not torch.isclose(base, l_sar)
    assert not torch.isclose(base, l_opt)
    # the SAR branch really feeds the prediction
    feats = model.extract_feat(x)
    assert [f.shape[1] for f in feats] == dd.TINY_CHANNELS
    with pytest.raises(ValueError, match='stacked'):
        model.extract_feat(x[:, :3])


# ------------------------------------------------------------ converters
def test_sarsegl1_tiling_covers_the_scenes_and_gives_the_papers_540():
    import sarsegl1
    # stride 300: 5456 -> starts 0..4800 (17) + the aligned 4956 = 18;
    # 4708 -> 0..4200 (15) + 4208 = 16; 6192 -> 0..5400 (19) + 5692 = 20;
    # 4888 -> 0..4200 (15) + 4388 = 16: 18 * 16 + 20 * 16 = 608
    boxes = (sarsegl1.tile_boxes(5456, 4708) +
             sarsegl1.tile_boxes(6192, 4888))
    assert len(boxes) == 608
    assert max(b.row_off for b in boxes[:288]) == 5456 - 500
    assert max(b.col_off for b in boxes[:288]) == 4708 - 500
    # only the windows on the 300 px lattice: the paper's 15 x 17 + 15 x 19
    paper = (sarsegl1.tile_boxes(5456, 4708, edge='drop') +
             sarsegl1.tile_boxes(6192, 4888, edge='drop'))
    assert len(paper) == 540
    assert [b.row_off for b in sarsegl1.tile_boxes(1100, 500)] == [0, 300,
                                                                    600]
    train, test = sarsegl1.split_indices(540, 0.8, seed=0)
    assert (len(train), len(test)) == (432, 108)
    assert not set(train) & set(test)
    assert sarsegl1.split_indices(540, 0.8, seed=0) == (train, test)


def test_sarsegl1_tiles_are_the_source_windows(tmp_path):
    import sarsegl1

    from mmringmoe.datasets.transforms.raster_io import (LoadComplexSAR,
                                                          read_raster)
    scenes = dd.make_sarsegl1_raw(str(tmp_path / 'raw'))
    counts = sarsegl1.convert(scenes, str(tmp_path / 'out'), size=32,
                              overlap=8)
    name, paths, lbl_path = scenes[1]
    src = LoadComplexSAR()(dict(img_path=paths[0]))['img']
    lbl = read_raster(lbl_path)[..., 0]
    boxes = sarsegl1.tile_boxes(*lbl.shape, 32, 8)
    # (88, 112) scenes, stride 24: rows 0, 24, 48 and 56; cols 0, 24, 48,
    # 72 and 80 -> 20 windows each
    assert len(boxes) == 20
    assert counts['total'] == len(boxes) + len(
        sarsegl1.tile_boxes(*read_raster(scenes[0][2]).shape[:2], 32, 8))
    y, x = boxes[-1].row_off, boxes[-1].col_off
    assert (y, x) == (88 - 32, 112 - 32)
    split = 'train' if osp.exists(
        tmp_path / 'out' / 'img_dir' / 'train' / f'{name}_{y}_{x}.tif') \
        else 'test'
    tile = read_raster(str(tmp_path / 'out' / 'img_dir' / split /
                           f'{name}_{y}_{x}.tif'))
    np.testing.assert_array_equal(tile, src[y:y + 32, x:x + 32])
    ann = read_raster(str(tmp_path / 'out' / 'ann_dir' / split /
                          f'{name}_{y}_{x}.png'))[..., 0]
    want = lbl[y:y + 32, x:x + 32].astype(np.int64) - 1
    want[want < 0] = 255
    np.testing.assert_array_equal(ann, want)
    with pytest.raises(FileExistsError):
        sarsegl1.convert(scenes, str(tmp_path / 'out'), size=32, overlap=8)


def test_whu_label_values_are_remapped(tmp_path):
    import whu_opt_sar
    lbl = np.array([[0, 10, 20, 30], [40, 50, 60, 70]], np.uint8)
    np.testing.assert_array_equal(
        whu_opt_sar.remap_labels(lbl),
        [[255, 0, 1, 2], [3, 4, 5, 6]])
    with pytest.raises(ValueError, match='15'):
        whu_opt_sar.remap_labels(np.array([[15]], np.uint8), 'x.tif')
    counts = dd.make_whu_opt_sar(str(tmp_path / 'out'),
                                 str(tmp_path / 'raw'))
    # two 128 x 64 scenes -> 4 patches of 64 x 64, split 8:2
    assert counts == dict(total=4, train=3, test=1)


def test_dfc23_polygons_are_rasterised_with_their_class(tmp_path):
    import dfc23
    mask = dfc23.rasterise(
        20, 20, [dict(category_id=7, segmentation=[[2, 2, 9, 2, 9, 5, 2, 5]])],
        {7: 3})
    assert mask[3, 5] == 3 and mask[0, 0] == 0 and mask[10, 10] == 0
    assert (mask == 3).sum() == 8 * 4
    counts = dd.make_dfc23(str(tmp_path / 'out'), str(tmp_path / 'raw'))
    assert counts == dict(train=7, val=2, test=1)


def test_dynamicearthnet_pairs_month_image_with_onehot_label(tmp_path):
    from mmcv.transforms import Compose

    from mmringmoe.datasets.seg_datasets import DynamicEarthNetDataset
    dd.make_dynamicearthnet(str(tmp_path))
    ds = DynamicEarthNetDataset(
        data_root=str(tmp_path), ann_file='dynnet_training_splits/train.txt',
        pipeline=[])
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_path'].endswith(
        osp.join('planet', '18N', '24E-187N', '1311_3077_13', 'PF-SR',
                 '2018-01-01.tif'))
    out = Compose([
        dict(type='mmringmoe.LoadRSImageFromFile', modality='ms'),
        dict(type='mmringmoe.LoadSegAnnotations', num_classes=7)
    ])(dict(info))
    import tifffile
    onehot = tifffile.imread(info['seg_map_path'])
    want = np.argmax(onehot, 0)
    want[onehot.max(0) == 0] = 255
    np.testing.assert_array_equal(out['gt_seg_map'], want)
    assert out['img'].shape == (dd.SIZE, dd.SIZE, 4)


# ------------------------------------------------------------ Convpass
def test_convpass_freezes_every_ringmoe_weight_and_trains_adapters():
    from mmringmoe.models import ConvpassRingMoE, RingMoE
    from helpers import tiny_backbone
    kw = {k: v for k, v in tiny_backbone().items() if k != 'type'}
    torch.manual_seed(0)
    plain = RingMoE(**kw).eval()
    model = ConvpassRingMoE(**kw)
    missing, unexpected = model.load_state_dict(plain.state_dict(),
                                                strict=False)
    assert not unexpected
    assert any(k.startswith('convpass.') for k in missing)
    buffers = set(dict(model.named_buffers()))
    assert {k for k in missing if not k.startswith('convpass.')} <= buffers
    model.train()
    originals = {n: p for n, p in model.named_parameters()
                 if not n.startswith('convpass.')}
    adapters = {n: p for n, p in model.named_parameters()
                if n.startswith('convpass.')}
    assert all(not p.requires_grad for p in originals.values())
    assert all(p.requires_grad for p in adapters.values())
    assert model.num_trainable_params() == sum(
        p.numel() for p in adapters.values())
    # zero up-projection: the frozen model's function is untouched at start
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        for a, b in zip(model(x), plain(x)):
            torch.testing.assert_close(a, b)
    # one adapter per attention and FFN branch of every block
    assert len(model.convpass) == 2 * sum(model.depths)
    for m in model.convpass.values():
        torch.nn.init.normal_(m.up.weight, std=0.02)
    model.train()
    sum(o.square().mean() for o in model(x)).backward()
    assert all(p.grad is None for p in originals.values())
    for n, p in adapters.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_convpass_config_trains_only_adapters_and_head():
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(osp.join(
        dd.ROOT, 'configs', 'classification',
        'ringmoe-opt-kc-convpass_16xb64-200e_aid-tr20-512px.py'))
    cfg.model.backbone = dd.tiny_version(cfg.model.backbone)
    cfg.model.head.in_channels = dd.TINY_CHANNELS[-1]
    model = MODELS.build(cfg.model)
    model.init_weights()  # logs the trainable count
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(('backbone.convpass.', 'head.')) for n in trainable)
    from mmringmoe.models.moe_loss import log_trainable
    n_train, n_total = log_trainable(model, 'convpass')
    assert n_train == model.backbone.num_trainable_params() + sum(
        p.numel() for p in model.head.parameters())
    assert n_train < 0.1 * n_total


# ------------------------------------------------------------ bad input
def _load_ann(tmp_path, lbl, img_shape, num_classes=5, name='lbl.png'):
    from mmringmoe.datasets.seg_transforms import LoadSegAnnotations
    dd._png(str(tmp_path / name), lbl)
    return LoadSegAnnotations(num_classes=num_classes)(dict(
        img_path=str(tmp_path / 'img.tif'),
        seg_map_path=str(tmp_path / name), ori_shape=img_shape,
        reduce_zero_label=False, seg_fields=[], label_map=None))


def test_mask_size_differs_from_image(tmp_path):
    with pytest.raises(ValueError, match=r'lbl\.png.*\(30, 32\).*\(32, 32\)'):
        _load_ann(tmp_path, np.zeros((30, 32), np.uint8), (32, 32))


def test_label_value_outside_class_list(tmp_path):
    lbl = np.zeros((8, 8), np.uint8)
    lbl[0, 0] = 7
    lbl[1, 1] = 255  # ignore index stays allowed
    with pytest.raises(ValueError, match=r'lbl\.png.*\[7\].*5 classes'):
        _load_ann(tmp_path, lbl, (8, 8))
    lbl[0, 0] = 4
    out = _load_ann(tmp_path, lbl, (8, 8), name='ok.png')
    assert out['gt_seg_map'].max() == 255


def test_sar_l1_wrong_channel_count(tmp_path):
    from mmcv.transforms import Compose
    path = str(tmp_path / 'tile.tif')
    dd._tif(path, np.zeros((8, 8, 6), np.int16), photometric='minisblack',
            planarconfig='contig')
    pipe = Compose([dict(type='mmringmoe.LoadComplexSAR', to_float32=True)])
    with pytest.raises(ValueError, match=r"tile\.tif.*sar_l1.*expected 8"):
        pipe(dict(img_path=path))


def test_missing_partner_image(tmp_path):
    from mmringmoe.datasets.seg_datasets import WHUOptSARDataset
    from mmringmoe.datasets.seg_transforms import LoadOptSARPair
    root = tmp_path / 'whu'
    for sub, ext in (('optical', '.tif'), ('sar', '.tif'), ('lbl', '.png')):
        (root / sub / 'train').mkdir(parents=True)
    for name in ('a', 'b'):
        dd._tif(str(root / 'optical' / 'train' / f'{name}.tif'),
                np.zeros((8, 8, 3), np.uint8), photometric='rgb')
        dd._png(str(root / 'lbl' / 'train' / f'{name}.png'),
                np.zeros((8, 8), np.uint8))
    dd._tif(str(root / 'sar' / 'train' / 'a.tif'), np.zeros((8, 8),
                                                              np.uint8))
    with pytest.raises(FileNotFoundError,
                       match=r"optical.*b\.tif.*sar.*b\.tif.*sar_l2"):
        WHUOptSARDataset(
            data_root=str(root),
            data_prefix=dict(img_path='optical/train', sar_path='sar/train',
                             seg_map_path='lbl/train'))
    with pytest.raises(FileNotFoundError, match=r'b\.tif.*not found'):
        LoadOptSARPair()(dict(
            img_path=str(root / 'optical' / 'train' / 'b.tif'),
            sar_path=str(root / 'sar' / 'train' / 'b.tif')))


def test_sarsegl1_cli(tmp_path):
    import sarsegl1
    scenes = dd.make_sarsegl1_raw(str(tmp_path / 'raw'))
    argv = []
    for name, images, label in scenes:
        argv += ['--scene', name, *images, label]
    out = str(tmp_path / 'SARSegL1')
    counts = sarsegl1.main(argv + ['--out-dir', out, '--size', '32',
                                   '--overlap', '8'])
    train = open(osp.join(out, 'splits', 'train.txt')).read().split()
    test = open(osp.join(out, 'splits', 'test.txt')).read().split()
    assert (len(train), len(test)) == (counts['train'], counts['test'])
    assert counts['train'] == round(0.8 * counts['total'])
    assert not set(train) & set(test)
    with pytest.raises(SystemExit):
        sarsegl1.main(['--scene', 'x', 'a.tif', 'b.tif', 'l.png',
                       '--out-dir', out])
