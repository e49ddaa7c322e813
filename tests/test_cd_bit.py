"""Change detection (paper B.5.6, Tab. A11/A16): metric, paired transforms,
BIT configs end to end on generated LEVIR-CD / CDD layouts, and learning."""
import numpy as np
import pytest
import torch
from PIL import Image

from cd_depth_fewshot_helpers import (assert_variant_of, load_config,
                                            tiny_like, train_then_test)
from helpers import TINY_CHANNELS

LEVIR = 'change_detection/bit_ringmoe-opt-kc_1xb8-200e_levircd-256x256.py'
CDD = 'change_detection/bit_ringmoe-opt-kc_1xb8-200e_cdd-256x256.py'


def test_metric_hand_computed_4x4():
    from mmringmoe.evaluation.metrics import ChangeDetectionMetric
    gt = torch.tensor([[1, 1, 0, 0],
                       [1, 1, 0, 0],
                       [0, 0, 0, 0],
                       [0, 0, 0, 255]])
    pred = torch.tensor([[1, 0, 0, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0],
                         [0, 0, 0, 1]])  # the last pixel is ignored
    metric = ChangeDetectionMetric()
    metric.process({}, [dict(pred_sem_seg=dict(data=pred[None]),
                             gt_sem_seg=dict(data=gt[None]))])
    out = metric.compute_metrics(metric.results)
    # TP 3, FP 1, FN 1
    assert out['Precision'] == pytest.approx(75.0)
    assert out['Recall'] == pytest.approx(75.0)
    assert out['F1'] == pytest.approx(75.0)
    assert out['IoU'] == pytest.approx(60.0)


def _write_pair(root, split, name, a, b, label, label_dir='label',
                ext='.png'):
    for sub, arr in (('A', a), ('B', b), (label_dir, label)):
        d = root / split / sub
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(d / (name + ext), quality=100)


def _pair(rng, size=256, label_value=255):
    a = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    b = a.copy()
    y, x = rng.integers(0, size - 64, 2)
    b[y:y + 64, x:x + 64] = 250
    label = np.zeros((size, size), np.uint8)
    label[y:y + 64, x:x + 64] = label_value
    return a, b, label


def _make_cd_data(root, label_dir, ext, label_value):
    rng = np.random.default_rng(0)
    for split in ('train', 'val', 'test'):
        for i in range(2):
            _write_pair(root, split, f'{split}_{i}', *_pair(rng, 256,
                                                             label_value),
                        label_dir=label_dir, ext=ext)


def _tiny(cfg, data_root):
    cfg.model.backbone = tiny_like(cfg.model.backbone)
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data_root)
    cfg.train_dataloader.batch_size = 2
    return cfg


@pytest.mark.parametrize('config,label_dir,ext,label_value', [
    (LEVIR, 'label', '.png', 1),   # mmseg levircd.py slices: 0/1 masks
    (CDD, 'OUT', '.jpg', 255),     # CDD: 0/255 JPEG masks
    # a sparse (MoE) variant end to end: balance loss through the runner
    (LEVIR.replace('-kc_', '-ep_'), 'label', '.png', 1),
])
def test_bit_config_train_and_test(tmp_path, config, label_dir, ext,
                                   label_value):
    cfg = load_config(config)
    assert cfg.model.backbone.frozen_stages == 0  # first stage frozen
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == 5e-5
    assert cfg.train_cfg.max_epochs == 200
    sched = cfg.param_scheduler[0]
    assert (sched.type, sched.end_factor, sched.end) == ('LinearLR', 0.0, 200)
    assert cfg.model.decode_head.loss_decode.use_sigmoid  # BCE
    steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    for aug in ('RandomFlip', 'RandomCrop', 'RandomResize',
                'mmringmoe.BitemporalPhotoMetricDistortion',
                'mmringmoe.BitemporalGaussianBlur'):
        assert aug in steps
    data_root = tmp_path / 'data'
    _make_cd_data(data_root, label_dir, ext, label_value)
    metrics = train_then_test(_tiny(cfg, data_root), tmp_path)
    assert {'F1', 'IoU', 'Precision', 'Recall'} <= set(metrics)


@pytest.mark.parametrize('variant', ['ep', 'ks', 'ka'])
def test_bit_variant_configs(variant):
    assert_variant_of(
        f'change_detection/bit_ringmoe-opt-{variant}_1xb8-200e_'
        'levircd-256x256.py', LEVIR, f'ringmoe-opt-{variant}.py')


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['ks', 'ka'])
def test_bit_variant_config_train_and_test(tmp_path, variant):
    """The dense variants end to end (EP runs in the fast set)."""
    cfg = load_config(LEVIR.replace('-kc_', f'-{variant}_'))
    data_root = tmp_path / 'data'
    _make_cd_data(data_root, 'label', '.png', 1)
    metrics = train_then_test(_tiny(cfg, data_root), tmp_path)
    assert {'F1', 'IoU', 'Precision', 'Recall'} <= set(metrics)


def test_pair_geometry_is_shared(tmp_path):
    """Flip / rescale / crop move both dates and the label together."""
    from mmcv.transforms import Compose

    import mmringmoe  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    rng = np.random.default_rng(1)
    a, b, label = _pair(rng, 96, 255)
    _write_pair(tmp_path, 'train', 'x', a, a, (a[..., 0] > 127).astype(
        np.uint8) * 255)
    pipeline = Compose([
        dict(type='mmringmoe.LoadBitemporalImageFromFile'),
        dict(type='mmringmoe.LoadChangeLabel', label_convention='0/255'),
        dict(type='RandomCrop', crop_size=(64, 64)),
        dict(type='RandomFlip', prob=[0.5, 0.5],
             direction=['horizontal', 'vertical']),
    ])
    for _ in range(5):
        out = pipeline(dict(
            img_path=str(tmp_path / 'train/A/x.png'),
            img_path2=str(tmp_path / 'train/A/x.png'),
            seg_map_path=str(tmp_path / 'train/label/x.png'),
            seg_fields=[], reduce_zero_label=False))
        img = out['img']
        assert img.shape == (64, 64, 6)
        np.testing.assert_array_equal(img[..., :3], img[..., 3:])
        # the mask follows the (RGB) image: label = R > 127
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      (img[..., 0] > 127).astype(np.uint8))


def test_photometric_same_for_both_dates_option():
    from mmringmoe.datasets.transforms.bitemporal import (
        BitemporalGaussianBlur, BitemporalPhotoMetricDistortion)
    rng = np.random.default_rng(2)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    img = np.concatenate([a, a], axis=2)
    same = BitemporalPhotoMetricDistortion(same_for_both_dates=True)
    out = same.transform(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(out[..., :3], out[..., 3:])
    # sigma below ~0.25 gives OpenCV a 1-tap kernel on uint8 (no blur at
    # all), so the 'it blurred' check draws sigma from [1, 2] only
    for seed in range(5):
        np.random.seed(seed)
        blur = BitemporalGaussianBlur(prob=1.0, sigma_range=(1.0, 2.0))
        out = blur.transform(dict(img=img.copy()))['img']
        np.testing.assert_array_equal(out[..., :3], out[..., 3:])
        assert not np.array_equal(out[..., :3], a)
    np.random.seed(0)
    diff = BitemporalPhotoMetricDistortion()
    changed = [not np.array_equal(*np.split(
        diff.transform(dict(img=img.copy()))['img'], 2, axis=2))
        for _ in range(5)]
    assert any(changed)  # independent jitter per date by default


@pytest.mark.slow
def test_bit_learns_pasted_square():
    """B = A with a bright square pasted in: the tiny siamese BIT marks it
    (changed-class IoU > 0.5 on unseen pairs) within a few hundred CPU
    iterations."""
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmringmoe.evaluation.metrics import ChangeDetectionMetric
    from mmringmoe.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    cfg = load_config(LEVIR)
    model_cfg = cfg.model
    model_cfg.backbone = tiny_like(model_cfg.backbone)
    model_cfg.decode_head.in_channels = TINY_CHANNELS
    model_cfg.data_preprocessor.size = None
    model = MODELS.build(model_cfg)
    size = 32
    rng = np.random.default_rng(0)

    def batch(n):
        imgs, samples = [], []
        for _ in range(n):
            a = rng.normal(0.0, 0.5, (3, size, size)).astype(np.float32)
            b = a.copy()
            s = int(rng.integers(8, 14))
            y, x = rng.integers(0, size - s, 2)
            b[:, y:y + s, x:x + s] = 2.5
            label = np.zeros((1, size, size), np.int64)
            label[:, y:y + s, x:x + s] = 1
            imgs.append(np.concatenate([a, b]))
            sample = SegDataSample(metainfo=dict(
                img_shape=(size, size), ori_shape=(size, size),
                pad_shape=(size, size), padding_size=[0, 0, 0, 0]))
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(label))
            samples.append(sample)
        return torch.from_numpy(np.stack(imgs)), samples

    optim = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(200):
        inputs, samples = batch(4)
        losses = model.loss(inputs, samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    metric = ChangeDetectionMetric()
    with torch.no_grad():
        inputs, samples = batch(16)
        preds = model.predict(inputs, samples)
    metric.process({}, [p.to_dict() for p in preds])
    out = metric.compute_metrics(metric.results)
    print('pasted-square change detection after 200 iterations:', out)
    assert out['IoU'] > 50, out


def test_first_stage_frozen_and_moe_balance_loss():
    """frozen_stages=0 freezes the patch embedding and stage 0 only; a sparse
    (EP / 6.5B) backbone adds its weighted load-balance loss."""
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from mmringmoe.registry import MODELS
    init_default_scope('mmseg')
    cfg = load_config(LEVIR)
    cfg.model.backbone = tiny_like(dict(cfg.model.backbone,
                                        moe_mode='sparse'))
    cfg.model.decode_head.in_channels = TINY_CHANNELS
    model = MODELS.build(cfg.model)
    model.train()
    bb = model.backbone
    assert not any(p.requires_grad for p in bb.patch_embed.parameters())
    assert not any(p.requires_grad for p in bb.stages[0].parameters())
    assert all(p.requires_grad for p in bb.stages[1].parameters())
    sample = SegDataSample(metainfo=dict(img_shape=(32, 32),
                                         pad_shape=(32, 32)))
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 32, 32,
                                                   dtype=torch.long))
    losses = model.loss(torch.randn(1, 6, 32, 32), [sample])
    balance = losses['loss_moe_balance']
    assert balance.requires_grad
    torch.testing.assert_close(balance, 0.001 * bb.aux_loss())
