"""RingMoEMIM: grouping, targets, the Eq. 6-7 loss, sampler, meta-device init."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmpretrain.structures import DataSample

from mmringmoe.datasets.transforms import sar_power
from mmringmoe.models import RingMoEMIM
from mmringmoe.registry import MODELS

MODS = ('opt', 'ms', 'sar_l1', 'sar_l2')
CHANNELS = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)
SIZE = 64  # two 32-px mask patches per side keep these tests fast


def build_model(**kw):
    torch.manual_seed(0)
    cfg = dict(
        type='mmringmoe.RingMoEMIM',
        backbone=dict(type='mmringmoe.RingMoE', arch='tiny', modalities=MODS,
                      out_indices=(3, ), drop_path_rate=0., use_mask_token=True),
        data_preprocessor=dict(
            type='mmringmoe.RingMoEMIMDataPreprocessor',
            norm_cfg=dict(opt=dict(mean=[10.] * 3, std=[2.] * 3),
                          sar_l1=dict(mean=[0.] * 8, std=[100.] * 8))))
    cfg.update(kw)
    return MODELS.build(cfg)


def make_batch(n_per_mod=2, seed=0, order=None):
    """A pseudo-collated mixed batch as the dataloader gives it."""
    rng = np.random.default_rng(seed)
    items = []
    for m in (order or MODS):
        for _ in range(n_per_mod):
            if m == 'sar_l1':
                img = rng.integers(-900, 900, (SIZE, SIZE, 8)).astype(np.int16)
            else:
                img = rng.integers(0, 255, (SIZE, SIZE, CHANNELS[m])).astype(
                    np.uint8)
            ds = DataSample(metainfo=dict(modality=m))
            mask = np.zeros((2, 2), int)
            mask.flat[rng.permutation(4)[:3]] = 1
            ds.set_mask(np.kron(mask, np.ones((8, 8), int)))
            if m == 'sar_l1':
                ds.set_field(np.log10(sar_power(img)).astype(np.float32),
                             'gt_power')
                # as SARPower writes it: positive power
                ds.set_field(sar_power(img) > 0, 'valid_mask')
            items.append(dict(inputs=torch.from_numpy(img).permute(2, 0, 1),
                              data_samples=ds))
    return pseudo_collate(items)


def test_preprocessor_groups_by_modality_and_normalises():
    model = build_model()
    # interleaved order in the batch; output follows the configured order
    batch = make_batch(order=('sar_l2', 'opt', 'sar_l1', 'ms'))
    raw = {ds.modality: x for x, ds in zip(batch['inputs'],
                                           batch['data_samples'])}
    data = model.data_preprocessor(batch)
    assert list(data['inputs']) == list(MODS)
    for m in MODS:
        x = data['inputs'][m]
        assert x.shape == (2, CHANNELS[m], SIZE, SIZE)
        assert x.dtype == torch.float32
        assert all(ds.modality == m for ds in data['data_samples'][m])
    np.testing.assert_allclose(data['inputs']['opt'][1],
                               (raw['opt'].float() - 10) / 2)
    np.testing.assert_allclose(data['inputs']['sar_l1'][1],
                               raw['sar_l1'].float() / 100, rtol=1e-6)
    np.testing.assert_allclose(data['inputs']['ms'][1], raw['ms'].float())


def test_preprocessor_stats_file(tmp_path):
    import json
    stats = {m: dict(mean=[1.0] * CHANNELS[m], std=[4.0] * CHANNELS[m])
             for m in MODS}
    (tmp_path / 'rs_stats.json').write_text(json.dumps(stats))
    pre = MODELS.build(dict(type='mmringmoe.RingMoEMIMDataPreprocessor',
                            stats_file=str(tmp_path / 'rs_stats.json')))
    batch = make_batch()
    data = pre(batch)
    np.testing.assert_allclose(data['inputs']['ms'][0],
                               (batch['inputs'][2].float() - 1) / 4)
    del stats['sar_l1']
    (tmp_path / 'partial.json').write_text(json.dumps(stats))
    pre = MODELS.build(dict(type='mmringmoe.RingMoEMIMDataPreprocessor',
                            stats_file=str(tmp_path / 'partial.json')))
    with pytest.raises(ValueError, match=r"partial\.json.*\['sar_l1'\]"):
        pre(make_batch())


def test_decoders_and_targets():
    model = build_model()
    assert model.target_channels == dict(opt=3, ms=4, sar_l1=1, sar_l2=1)
    model.eval()
    data = model.data_preprocessor(make_batch())
    out = model(data['inputs'], data['data_samples'], mode='predict')
    for m in MODS:
        assert out[m]['pred'].shape == (2, model.target_channels[m], SIZE,
                                        SIZE)
    # SAR-L1 target: the power carried from the pipeline (raw values), not
    # anything derived from the normalised input
    power = torch.stack([torch.as_tensor(ds.gt_power)
                         for ds in data['data_samples']['sar_l1']])
    torch.testing.assert_close(out['sar_l1']['target'][:, 0], power)
    torch.testing.assert_close(out['opt']['target'], data['inputs']['opt'])

    pixel = build_model(sar_l1_target='pixel')
    assert pixel.target_channels['sar_l1'] == 8
    pixel.eval()
    out = pixel(data['inputs'], data['data_samples'], mode='predict')
    assert out['sar_l1']['pred'].shape[1] == 8
    torch.testing.assert_close(out['sar_l1']['target'],
                               data['inputs']['sar_l1'])


def _manual_loss(out, criterion='L2'):
    total = 0
    for m, o in out.items():
        mask = o['mask'].repeat_interleave(4, 1).repeat_interleave(4, 2)
        mask = mask.unsqueeze(1).expand_as(o['target']).bool()
        diff = (o['pred'] - o['target'])[mask]
        total = total + (diff.pow(2) if criterion == 'L2' else diff.abs()).mean()
    return total


@pytest.mark.parametrize('criterion', ['L2', 'L1'])
def test_loss_is_eq6_plus_alpha_aux(criterion):
    model = build_model(head=dict(
        patch_size=4, loss=dict(type='PixelReconstructionLoss',
                                criterion=criterion)))
    model.eval()  # no gating noise: the two forwards agree
    data = model.data_preprocessor(make_batch())
    out = model(data['inputs'], data['data_samples'], mode='predict')
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {f'loss_rec_{m}' for m in MODS} | {'loss_aux'}
    rec = sum(v for k, v in losses.items() if k.startswith('loss_rec'))
    torch.testing.assert_close(rec, _manual_loss(out, criterion))
    torch.testing.assert_close(losses['loss_aux'],
                               0.001 * model.backbone.aux_loss())
    assert losses['loss_aux'] > 0  # sparse mode has a balance loss


def test_masked_loss_ignores_visible_pixels_exactly():
    model = build_model()
    model.eval()
    data = model.data_preprocessor(make_batch())
    out = model(data['inputs'], data['data_samples'], mode='predict')
    for m, o in out.items():
        head = model.head[m]
        base = head.loss(o['pred'], o['target'], o['mask'])
        full = o['mask'].repeat_interleave(4, 1).repeat_interleave(4, 2)
        vis = (full[0] == 0).nonzero()[0]
        hid = (full[0] == 1).nonzero()[0]
        pred = o['pred'].clone()
        pred[0, :, vis[0], vis[1]] += 1e3
        assert torch.equal(head.loss(pred, o['target'], o['mask']), base)
        target = o['target'].clone()
        target[0, :, vis[0], vis[1]] -= 1e3
        assert torch.equal(head.loss(o['pred'], target, o['mask']), base)
        pred = o['pred'].clone()
        pred[0, :, hid[0], hid[1]] += 1.0
        assert head.loss(pred, o['target'], o['mask']) != base


def test_missing_power_and_bad_setup_errors():
    model = build_model()
    batch = make_batch()
    for ds in batch['data_samples']:
        if ds.modality == 'sar_l1':
            del ds.gt_power
    data = model.data_preprocessor(batch)
    with pytest.raises(ValueError, match='gt_power.*SARPower'):
        model(data['inputs'], data['data_samples'], mode='loss')
    with pytest.raises(ValueError, match='use_mask_token'):
        build_model(backbone=dict(type='mmringmoe.RingMoE', arch='tiny',
                                  use_mask_token=False))
    batch = make_batch()
    batch['data_samples'][0].set_metainfo(dict(modality='hsi'))
    with pytest.raises(ValueError, match='hsi'):
        model.data_preprocessor(batch)


def test_train_step_updates_and_unimodal_subset():
    model = build_model(
        backbone=dict(type='mmringmoe.RingMoE', arch='tiny',
                      modalities=('opt', ), out_indices=(3, ),
                      use_mask_token=True))
    from mmengine.optim import OptimWrapper
    opt = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    batch = make_batch(order=('opt', ))
    before = model.neck.decoders['opt'].decoder[0].weight.clone()
    log = model.train_step(batch, opt)
    assert set(log) == {'loss', 'loss_rec_opt', 'loss_aux'}
    assert not torch.equal(before, model.neck.decoders['opt'].decoder[0].weight)


def test_meta_device_build_and_materialise():
    """The FSDP path: parameters on meta, buffers real; materialising every
    module gives a working model with the same buffers."""
    from mmringmoe.engine.fsdp import materialize_module, params_on_meta
    with params_on_meta():
        meta_model = build_model()
    assert all(p.is_meta for p in meta_model.parameters())
    assert not any(b.is_meta for b in meta_model.buffers())
    ref = build_model()
    for m in meta_model.modules():
        materialize_module(m, torch.device('cpu'))
    assert not any(p.is_meta for p in meta_model.parameters())
    rb = dict(ref.named_buffers())
    for name, b in meta_model.named_buffers():
        torch.testing.assert_close(b, rb[name], msg=name)
    meta_model.eval()
    data = meta_model.data_preprocessor(make_batch())
    losses = meta_model(data['inputs'], data['data_samples'], mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
