"""Few-shot scene classification (paper B.5.8, Tab. A2/A4/A16): episodic
sampler, accuracy +- CI95, RelationNet configs end to end on generated
NWPU-RESISC45 / WHU-RS19 / UCM folder layouts."""
import numpy as np
import pytest
from PIL import Image

from cd_depth_fewshot_helpers import (assert_variant_of, load_config,
                                      tiny_like, train_then_test)
from helpers import TINY_CHANNELS


def _config(name, shots=1, variant='-kc'):
    return (f'fewshot/relationnet_ringmoe-opt{variant}_1xb1-10k_'
            f'{name}-5way-{shots}shot.py')


def _make_folders(root, name, per_class=4, size=32, ext='.jpg'):
    from mmringmoe.datasets.fewshot import FEWSHOT_CLS_SPLITS
    rng = np.random.default_rng(0)
    splits = FEWSHOT_CLS_SPLITS[name]
    for cls in splits['train'] + splits['val'] + splits['test']:
        d = root / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3),
                                         dtype=np.uint8)).save(
                d / f'{cls}_{i:03d}{ext}')


def test_class_splits_match_table_a2():
    from mmringmoe.datasets.fewshot import FEWSHOT_CLS_SPLITS as S
    sizes = {n: tuple(len(s[k]) for k in ('train', 'val', 'test'))
             for n, s in S.items()}
    assert sizes == {'nwpu-resisc45': (25, 10, 10), 'whu-rs19': (9, 5, 5),
                     'ucm': (10, 5, 6)}
    for s in S.values():
        assert not set(s['train']) & (set(s['val']) | set(s['test']))
        assert not set(s['val']) & set(s['test'])


def _dataset(root, split, seed=0, **kw):
    from mmringmoe.datasets.fewshot import FewShotClsEpisodeDataset
    return FewShotClsEpisodeDataset(
        dataset_name='whu-rs19', split=split, data_root=str(root),
        num_ways=5, num_shots=1, num_queries=2, num_episodes=50, seed=seed,
        pipeline=[], **kw)


def test_episodes_never_use_test_classes_and_are_seeded(tmp_path):
    from mmringmoe.datasets.fewshot import FEWSHOT_CLS_SPLITS
    _make_folders(tmp_path, 'whu-rs19')
    split = FEWSHOT_CLS_SPLITS['whu-rs19']
    train = _dataset(tmp_path, 'train')
    held_out = set(split['val']) | set(split['test'])
    listed = {info['class_name'] for info in train.data_list}
    assert listed == set(split['train'])  # held-out folders never listed
    for i in range(len(train)):
        classes, support, query = train.sample_episode(i)
        names = {train.data_list[j]['class_name'] for j in support + query}
        assert len(names) == 5 and not names & held_out
        assert not set(support) & set(query)
    again = _dataset(tmp_path, 'train')
    other = _dataset(tmp_path, 'train', seed=1)
    eps = [train.sample_episode(i) for i in range(20)]
    assert eps == [again.sample_episode(i) for i in range(20)]
    assert eps != [other.sample_episode(i) for i in range(20)]
    test = _dataset(tmp_path, 'test')
    assert {i['class_name'] for i in test.data_list} == set(split['test'])


def test_missing_class_folder_is_a_clear_error(tmp_path):
    (tmp_path / 'Parking').mkdir()
    with pytest.raises(FileNotFoundError, match='class folder.*missing.*Port'):
        _dataset(tmp_path, 'train')


def test_accuracy_ci95_hand_computed():
    import torch
    from mmengine.structures import BaseDataElement

    from mmringmoe.evaluation.metrics import FewShotAccuracy
    metric = FewShotAccuracy()
    samples = []
    for pred in ([0, 1, 2, 3], [0, 1, 0, 0]):  # accuracies 1.0 and 0.5
        ds = BaseDataElement()
        ds.pred_label = torch.tensor(pred)
        ds.query_labels = torch.tensor([0, 1, 2, 3])
        samples.append(ds)
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out['accuracy'] == pytest.approx(75.0)
    # std of (1, 0.5) = 0.25; 1.96 * 0.25 / sqrt(2)
    assert out['accuracy_ci95'] == pytest.approx(100 * 1.96 * 0.25 / 2 ** .5)


def _tiny(cfg, data_root):
    cfg.model.backbone = tiny_like(cfg.model.backbone)
    cfg.model.in_channels = TINY_CHANNELS[-1]
    for key, episodes in (('train_dataloader', 1), ('val_dataloader', 2),
                          ('test_dataloader', 2)):
        ds = cfg[key].dataset
        ds.data_root = str(data_root)
        ds.num_queries = 1
        ds.num_episodes = episodes
    return cfg


@pytest.mark.parametrize('name,shots', [('nwpu-resisc45', 1),
                                        ('whu-rs19', 1), ('ucm', 1),
                                        ('nwpu-resisc45', 5)])
def test_relationnet_config_train_and_test(tmp_path, name, shots):
    cfg = load_config(_config(name, shots))
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('SGD', 0.001, 5e-4)
    assert cfg.model.frozen
    ds = cfg.train_dataloader.dataset
    assert (ds.num_ways, ds.num_shots, ds.dataset_name) == (5, shots, name)
    assert cfg.test_dataloader.dataset.split == 'test'
    data_root = tmp_path / 'data'
    _make_folders(data_root, name, per_class=shots + 1,
                  ext='.tif' if name == 'ucm' else '.jpg')
    metrics = train_then_test(_tiny(cfg, data_root), tmp_path)
    assert {'accuracy', 'accuracy_ci95'} <= set(metrics)


@pytest.mark.parametrize('variant', ['', '-ep', '-ks', '-ka'])
@pytest.mark.parametrize('name', ['nwpu-resisc45', 'whu-rs19', 'ucm'])
def test_relationnet_variant_configs(name, variant):
    assert_variant_of(_config(name, 1, variant), _config(name, 1),
                      f'ringmoe-opt{variant}.py')


@pytest.mark.slow
@pytest.mark.parametrize('variant', ['', '-ep', '-ks', '-ka'])
@pytest.mark.parametrize('name', ['nwpu-resisc45', 'whu-rs19', 'ucm'])
def test_relationnet_variant_config_train_and_test(tmp_path, name, variant):
    """Every variant config end to end (its sparse or dense backbone, tiny)."""
    cfg = load_config(_config(name, 1, variant))
    data_root = tmp_path / 'data'
    _make_folders(data_root, name, per_class=2,
                  ext='.tif' if name == 'ucm' else '.jpg')
    metrics = train_then_test(_tiny(cfg, data_root), tmp_path)
    assert {'accuracy', 'accuracy_ci95'} <= set(metrics)


def test_frozen_backbone_gets_no_gradient():
    import torch
    from mmengine.registry import init_default_scope

    from mmringmoe.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='mmringmoe.RelationNetClassifier',
        backbone=tiny_like(dict(moe_mode='dense')),
        in_channels=TINY_CHANNELS[-1]))
    model.train()
    assert not model.extractor.backbone.training
    from mmengine.structures import BaseDataElement
    ds = BaseDataElement()
    ds.support_labels = torch.arange(2)
    ds.query_labels = torch.tensor([1, 0])
    inputs = dict(support=torch.randn(1, 2, 3, 64, 64),
                  query=torch.randn(1, 2, 3, 64, 64))
    loss = model(inputs, [ds], mode='loss')['loss_relation']
    loss.backward()
    assert all(p.grad is None for p in model.extractor.parameters())
    assert any(p.grad is not None for p in model.relation.parameters())
