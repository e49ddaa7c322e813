"""1-shot segmentation (paper B.5.8, Tab. A3/A5/A16): masked average
pooling, Tab. A3 folds, prototype configs end to end on generated iSAID /
LoveDA (mmseg) layouts."""
import numpy as np
import pytest
import torch
from PIL import Image

from cd_depth_fewshot_helpers import (assert_variant_of, load_config,
                                      tiny_like, train_then_test)
from helpers import TINY_CHANNELS


def _config(ds, fold, variant='-kc'):
    size = '256x256' if ds == 'isaid' else '384x384'
    return (f'fewshot/protoseg_ringmoe-opt{variant}_1xb8-60e_{ds}-fold{fold}-'
            f'{size}.py')


def test_masked_average_pooling_hand_computed():
    from mmringmoe.models.fewshot import masked_average_pooling
    feats = torch.tensor([[[[1., 2.], [3., 4.]],
                           [[10., 20.], [30., 40.]]]])  # (1, 2, 2, 2)
    mask = torch.tensor([[[1, 0], [1, 1]]])
    out = masked_average_pooling(feats, mask)
    torch.testing.assert_close(out, torch.tensor([[(1 + 3 + 4) / 3,
                                                   (10 + 30 + 40) / 3]]))
    # a mask at twice the feature resolution: area down-sampling of a
    # constant block keeps it exact
    big = mask.repeat_interleave(2, 1).repeat_interleave(2, 2)
    torch.testing.assert_close(masked_average_pooling(feats, big), out)


def test_empty_support_mask_is_a_clear_error():
    from mmringmoe.models.fewshot import masked_average_pooling
    feats = torch.randn(2, 4, 3, 3)
    mask = torch.zeros(2, 3, 3)
    mask[0, 1, 1] = 1
    with pytest.raises(ValueError, match=r'sample\(s\) \[1\] has no '
                                         'foreground'):
        masked_average_pooling(feats, mask)
    out = masked_average_pooling(feats, mask, allow_empty=True)
    assert torch.equal(out[1], torch.zeros(4))


def test_folds_match_table_a3():
    from mmringmoe.datasets.fewshot import fewshot_seg_fold_classes as f
    for ds, n_test in (('isaid', 5), ('loveda', 2)):
        tests = [set(f(ds, k, 'test')) for k in range(3)]
        for k in range(3):
            train = set(f(ds, k, 'train'))
            assert len(tests[k]) == n_test
            assert not train & tests[k]
            assert 0 not in train | tests[k]  # background is never a class
        assert set().union(*tests) == set(range(1, 3 * n_test + 1))
    assert f('isaid', 0, 'test') == [1, 2, 3, 4, 5]  # ship .. basketball
    assert f('loveda', 2, 'test') == [5, 6]  # forest, agricultural
    with pytest.raises(ValueError, match='folds 0..2'):
        f('isaid', 3, 'test')


def _make_data(root, ds, fold, size=64):
    """Label maps in the data set's own coding: iSAID class index (0 bg),
    LoveDA raw (0 no-data, 1 background, class + 1)."""
    from mmringmoe.datasets.fewshot import fewshot_seg_fold_classes
    rng = np.random.default_rng(0)
    if ds == 'isaid':
        suffix, offset = '_instance_color_RGB.png', 0
    else:
        suffix, offset = '.png', 1
    for split, use in (('train', 'train'), ('val', 'test')):
        classes = fewshot_seg_fold_classes(ds, fold, use)
        (root / 'img_dir' / split).mkdir(parents=True, exist_ok=True)
        (root / 'ann_dir' / split).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
            label = np.full((size, size), offset, np.uint8)
            label[: size // 2 + 4] = classes[0] + offset  # >= 2048 px
            label[size // 2 + 4:, : size // 2] = classes[1] + offset
            Image.fromarray(img).save(root / 'img_dir' / split / f'P{i}.png')
            Image.fromarray(label).save(root / 'ann_dir' / split /
                                        f'P{i}{suffix}')


def _tiny(cfg, data_root):
    cfg.model.backbone = tiny_like(cfg.model.backbone)
    cfg.model.in_channels = sum(TINY_CHANNELS[i]
                                for i in cfg.model.feat_indices)
    cfg.model.proj_channels = 16
    cfg.train_dataloader.batch_size = 2
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data_root)
    cfg.val_dataloader.dataset.num_episodes = 2
    cfg.test_dataloader.dataset.num_episodes = 2
    return cfg


@pytest.mark.parametrize('ds', ['isaid', 'loveda'])
@pytest.mark.parametrize('fold', [0, 1, 2])
def test_protoseg_config_train_and_test(tmp_path, ds, fold):
    cfg = load_config(_config(ds, fold))
    opt = cfg.optim_wrapper.optimizer
    lr = 0.005 if ds == 'isaid' else 0.003
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', lr, 0.9, 1e-4)
    assert cfg.train_dataloader.batch_size == 8
    assert cfg.train_cfg.max_epochs == 60
    assert cfg.model.frozen
    assert cfg.train_dataloader.dataset.fold == fold
    assert cfg.test_dataloader.dataset.fold == fold
    size = 256 if ds == 'isaid' else 384
    resize = [t for t in cfg.test_dataloader.dataset.pipeline
              if t.type == 'Resize'][0]
    assert tuple(resize.scale) == (size, size)
    data_root = tmp_path / 'data'
    _make_data(data_root, ds, fold)
    metrics = train_then_test(_tiny(cfg, data_root), tmp_path)
    assert {'mIoU', 'FB-IoU'} <= set(metrics)


@pytest.mark.parametrize('variant', ['', '-ep', '-ks', '-ka'])
@pytest.mark.parametrize('ds', ['isaid', 'loveda'])
@pytest.mark.parametrize('fold', [0, 1, 2])
def test_protoseg_variant_configs(ds, fold, variant):
    assert_variant_of(_config(ds, fold, variant), _config(ds, fold),
                      f'ringmoe-opt{variant}.py')


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['', '-ep', '-ks', '-ka'])
@pytest.mark.parametrize('ds', ['isaid', 'loveda'])
@pytest.mark.parametrize('fold', [0, 1, 2])
def test_protoseg_variant_config_train_and_test(tmp_path, ds, fold, variant):
    """Every variant config end to end (its sparse or dense backbone, tiny)."""
    cfg = load_config(_config(ds, fold, variant))
    data_root = tmp_path / 'data'
    _make_data(data_root, ds, fold)
    metrics = train_then_test(_tiny(cfg, data_root), tmp_path)
    assert {'mIoU', 'FB-IoU'} <= set(metrics)


def test_seg_metric_hand_computed():
    from mmengine.structures import BaseDataElement

    from mmringmoe.evaluation.metrics import FewShotSegMetric
    metric = FewShotSegMetric()
    samples = []
    for name, pred, gt in (
            ('ship', [[1, 1], [0, 0]], [[1, 0], [0, 255]]),   # I 1, U 2
            ('ship', [[1, 0], [0, 0]], [[1, 0], [0, 0]]),     # I 1, U 1
            ('plane', [[0, 0], [0, 0]], [[1, 1], [0, 0]])):   # I 0, U 2
        ds = BaseDataElement(metainfo=dict(class_name=name))
        ds.pred_mask = torch.tensor(pred)
        ds.gt_mask = torch.tensor(gt)
        samples.append(ds)
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out['IoU.ship'] == pytest.approx(100 * 2 / 3)
    assert out['IoU.plane'] == pytest.approx(0.)
    assert out['mIoU'] == pytest.approx(100 * (2 / 3 + 0) / 2)
