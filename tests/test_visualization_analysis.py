"""Analysis tools: expert routing maps checked against
``record_routing_stats``, per-modality activation curves, the confusion
matrix against a hand count, t-SNE and confusion-matrix tools on tiny
configs, the progress helper."""
import glob
import io
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

import downstream_data as dd
from helpers import run_tool_main

SEG = osp.join(dd.ROOT, 'configs', 'segmentation')
CLS = osp.join(dd.ROOT, 'configs', 'classification')


@pytest.fixture(autouse=True)
def _fast_config_text():
    with dd.fast_config_text():
        yield


def init_checkpoint(cfg_file, path):
    from test_visualization_show import init_checkpoint as init
    return init(cfg_file, path)


# ------------------------------------------------------------ confusion
def test_confusion_matrix_equals_a_hand_count_on_4x4():
    from mmringmoe.visualization.analysis import confusion_matrix
    gt = np.array([[0, 0, 1, 1],
                   [0, 2, 1, 1],
                   [2, 2, 255, 1],
                   [2, 2, 0, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 2, 0, 1],
                     [2, 1, 2, 1],
                     [2, 2, 0, 0]])
    # rows ground truth, columns prediction; the two 255 pixels left out
    # gt 0 at (0,0)->0 (0,1)->1 (1,0)->0 (3,2)->0        : [3, 1, 0]
    # gt 1 at (0,2)->1 (0,3)->1 (1,2)->0 (1,3)->1 (2,3)->1: [1, 4, 0]
    # gt 2 at (1,1)->2 (2,0)->2 (2,1)->1 (3,0)->2 (3,1)->2: [0, 1, 4]
    hand = [[3, 1, 0], [1, 4, 0], [0, 1, 4]]
    assert confusion_matrix(pred, gt, 3).tolist() == hand
    with pytest.raises(ValueError, match='outside'):
        confusion_matrix(pred + 3, gt, 3)


# ------------------------------------------------------------ routing maps
@pytest.fixture(scope='module')
def ms_sparse(tmp_path_factory):
    """DynamicEarthNet MS (4-band uint16) tiny UperNet with a SPARSE tiny
    RingMoE (4 collaborative + 4 specialized experts) and random weights."""
    tmp = tmp_path_factory.mktemp('ms_sparse')
    root = str(tmp / 'dyna')
    dd.make_dynamicearthnet(root)
    path = str(tmp / 'cfg.py')
    dd.tiny_config(osp.join(SEG, 'upernet_ringmoe-ms-kc_8xb1-16k_'
                            'dynamicearthnet-planet-1024x1024.py'), root,
                   path, task='seg')
    cfg = Config.fromfile(path)
    cfg.model.backbone.moe_mode = 'sparse'
    cfg.dump(path)
    ckpt = init_checkpoint(path, tmp / 'init.pth')
    image = sorted(glob.glob(osp.join(root, 'planet', '**', '*.tif'),
                             recursive=True))[0]
    return path, ckpt, image


def test_routing_map_histograms_equal_record_routing_stats(ms_sparse,
                                                           tmp_path):
    cfg, ckpt, image = ms_sparse
    out = tmp_path / 'maps'
    summary = run_tool_main('analysis_tools/routing_maps', [
        cfg, ckpt, image, '--out', out, '--blocks', 'all',
        '--modality', 'ms'])
    assert isinstance(summary, dict) and len(summary) == 8  # tiny: 2x4
    # independently: the same input through the backbone with the
    # counters of expert pruning switched on
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'rm', osp.join(dd.ROOT, 'tools', 'analysis_tools', 'routing_maps.py'))
    rm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rm)
    c, model, backbone = rm.load_model(cfg, ckpt)
    inputs, _ = rm.prepare(c, model, image)
    assert inputs.shape[1] == 4
    backbone.reset_routing_stats()
    backbone.record_routing_stats(True)
    with torch.no_grad():
        backbone(inputs, modality='ms')
    backbone.record_routing_stats(False)
    stats = backbone.routing_stats()
    maps = np.load(out / 'routing_maps.npz')
    n_in = inputs.shape[-1]
    for i, (block, entry) in enumerate(summary.items()):
        stage = int(block.split('.')[1])
        h = w = n_in // (4 * 2 ** stage)
        assert entry['hw'] == [h, w]
        for key, kind in (('collaborative', 'collaborative'),
                          ('specialized.ms', 'specialized')):
            counts = stats[block][kind]['ms'].tolist()
            assert entry['routers'][key]['tokens_per_expert'] == counts
            expert = maps[f'{block}/{key}/expert']
            assert expert.shape == (1, h, w)  # top-1, token grid
            assert np.bincount(expert.ravel(), minlength=4).tolist() == counts
            gate = maps[f'{block}/{key}/gate']
            ent = maps[f'{block}/{key}/entropy']
            assert ((gate > 0) & (gate <= 1)).all()
            assert ((ent >= -1e-6) & (ent <= np.log(4) + 1e-6)).all()
        assert sum(counts) == h * w == stats[block]['tokens']['ms']
        assert (out / f'{block}.png').is_file()


@pytest.mark.slow
def test_routing_maps_refuse_a_dense_model(tmp_path):
    root = str(tmp_path / 'dyna')
    dd.make_dynamicearthnet(root)
    path = str(tmp_path / 'cfg.py')
    dd.tiny_config(osp.join(SEG, 'upernet_ringmoe-ms-kc_8xb1-16k_'
                            'dynamicearthnet-planet-1024x1024.py'), root,
                   path, task='seg')
    ckpt = init_checkpoint(path, tmp_path / 'init.pth')
    image = sorted(glob.glob(osp.join(root, 'planet', '**', '*.tif'),
                             recursive=True))[0]
    code = run_tool_main('analysis_tools/routing_maps', [
        path, ckpt, image, '--out', tmp_path / 'o'])
    assert code == 1


# ------------------------------------------------------------ B.4 curves
def test_activation_curves_plot_every_modality(tmp_path):
    from mmringmoe.visualization.analysis import plot_activation_curves
    usage = dict(blocks=['stages.0.blocks.0', 'stages.0.blocks.1'],
                 modalities=['opt', 'sar_l1'],
                 layers={b: dict(collaborative=dict(
                     opt=[0.7, 0.1, 0.1, 0.1], sar_l1=[0.0, 0.1, 0.2, 0.7]))
                     for b in ('stages.0.blocks.0', 'stages.0.blocks.1')})
    path = plot_activation_curves(usage, str(tmp_path / 'c.png'))
    from PIL import Image
    img = np.asarray(Image.open(path).convert('RGB'))
    assert img.shape[0] > 100 and img.std() > 0
    with pytest.raises(ValueError, match='no specialized'):
        plot_activation_curves(usage, str(tmp_path / 'x.png'),
                               expert_type='specialized')


# ------------------------------------------------------------ tools
@pytest.fixture(scope='module')
def cls_tiny(tmp_path_factory):
    from mmringmoe.datasets import cls_split
    tmp = tmp_path_factory.mktemp('cls')
    classes = Config.fromfile(osp.join(
        CLS, '_base_', 'nwpu-resisc45_tr10_224px.py')).classes
    root = tmp / 'data'
    dd.make_scene_folders(str(root / 'NWPU-RESISC45'), classes, per_class=3)
    cls_split.main([str(root / 'NWPU-RESISC45'), '--train-ratio', '0.1'])
    path = str(tmp / 'cfg.py')
    dd.tiny_config(osp.join(CLS, 'ringmoe-opt-kc_16xb64-200e_nwpu-resisc45-'
                            'tr10-224px.py'), str(root), path, task='cls')
    cfg = Config.fromfile(path)
    cfg.test_dataloader.dataset.pop('indices', None)  # the whole test split
    cfg.dump(path)
    return path, init_checkpoint(path, tmp / 'init.pth'), classes


@pytest.mark.slow
def test_tsne_tool_on_ten_seeded_classes(cls_tiny, tmp_path):
    cfg, ckpt, classes = cls_tiny
    out = tmp_path / 'tsne.png'
    res = run_tool_main('analysis_tools/tsne', [
        cfg, ckpt, '--out', out, '--seed', '3', '--quiet'])
    chosen = sorted(np.random.default_rng(3).choice(45, 10, replace=False))
    assert res['classes'] == [classes[c] for c in chosen]
    assert res['points'].shape == (len(res['labels']), 2)
    assert len(res['labels']) >= 10 and set(res['labels']) <= set(range(10))
    assert out.is_file() and (tmp_path / 'tsne.npz').is_file()


@pytest.mark.slow
def test_confusion_tool_classification(cls_tiny, tmp_path):
    cfg, ckpt, classes = cls_tiny
    out = tmp_path / 'cm.png'
    m = run_tool_main('analysis_tools/confusion_matrix',
                      [cfg, ckpt, '--out', out, '--quiet'])
    assert m.shape == (45, 45)
    saved = json.loads((tmp_path / 'cm.json').read_text())
    assert saved['matrix'] == m.tolist() and saved['classes'] == list(classes)
    # every test image counted once, in its true class's row: the row sums
    # are the test split's images per class (split tool: 3 per class, 10 %
    # to training -> 1 train, 2 test per class, see cls_split)
    from mmringmoe.datasets.cls_split import read_split
    test_file = glob.glob(osp.join(osp.dirname(cfg), 'data', 'splits', '*',
                                   'test.txt'))[0]
    per_class = np.bincount([label for _, label in read_split(test_file)],
                            minlength=45)
    assert m.sum(1).tolist() == per_class.tolist()
    assert out.is_file()


@pytest.mark.slow
def test_confusion_tool_segmentation_counts_every_labelled_pixel(tmp_path):
    root = str(tmp_path / 'iSAID')
    dd.make_isaid(root)
    path = str(tmp_path / 'cfg.py')
    dd.tiny_config(osp.join(SEG, 'upernet_ringmoe-opt-kc_8xb1-80k_'
                            'isaid-896x896.py'), root, path, task='seg')
    ckpt = init_checkpoint(path, tmp_path / 'init.pth')
    m = run_tool_main('analysis_tools/confusion_matrix',
                      [path, ckpt, '--out', tmp_path / 'cm.png', '--quiet'])
    from PIL import Image
    labels = [np.asarray(Image.open(p)) for p in sorted(glob.glob(
        osp.join(root, 'ann_dir', 'val', '*.png')))]
    # rows: the ground truth histogram of the val labels
    hist = np.bincount(np.concatenate([lb.ravel() for lb in labels]),
                       minlength=16)[:16]
    assert m.sum(1).tolist() == hist.tolist()


# ------------------------------------------------------------ progress
def test_progress_is_quiet_off_a_terminal_and_with_quiet():
    from mmringmoe.visualization import progress
    items = [1, 2, 3]
    assert progress(items, stream=io.StringIO()) is items  # not a TTY

    class TTY(io.StringIO):
        def isatty(self):
            return True

    tty = TTY()
    assert progress(items, quiet=True, stream=tty) is items
    assert list(progress(items, desc='files', stream=tty)) == items
    assert '3/3' in tty.getvalue() and 'files' in tty.getvalue()


def test_load_model_refuses_a_checkpoint_without_running_statistics(
        ms_sparse, tmp_path):
    """Only Swin V2's position buffers are rebuilt; a BatchNorm whose running
    statistics the checkpoint lacks would normalise with 0 / 1."""
    from mmringmoe.visualization.analysis import load_model
    cfg, ckpt, _ = ms_sparse
    data = torch.load(ckpt, map_location='cpu', weights_only=False)
    sd = data.get('state_dict', data)
    key = next(k for k in sd if k.endswith('running_var'))
    del sd[key]
    bad = tmp_path / 'no_running_var.pth'
    torch.save(data, bad)
    load_model(cfg, ckpt)  # the whole checkpoint: fine
    with pytest.raises(ValueError, match=f'lacks 1 weights .*{key}'):
        load_model(cfg, str(bad))
