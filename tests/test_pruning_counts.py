"""Parameter counts of the paper's variants, on meta tensors (no weights).

The converters run on a checkpoint of meta tensors written from
``with torch.device('meta'): RingMoE('1b')``, exactly as on a real file:
14.7B -> extract opt 6.5B -> EP (top 25%) -> merge 1.0B.
"""
import re

import pytest
import torch
from pruning_common import ROOT, converter, read

from mmringmoe.models import RingMoE
from mmringmoe.models.pruning import (count_params, describe, save_usage,
                                      usage_from_stats)

ALL = ('opt', 'ms', 'sar_l1', 'sar_l2')


def _printed_after(text):
    return int(re.findall(r'parameters after:\s+([\d,]+)', text)[-1]
               .replace(',', ''))


@pytest.fixture(scope='module')
def full_1b(tmp_path_factory):
    with torch.device('meta'):
        model = RingMoE('1b', modalities=ALL)
    sd = model.state_dict()
    assert all(v.is_meta for v in sd.values())
    path = tmp_path_factory.mktemp('meta') / 'ringmoe-1b.pth'
    torch.save({'meta': describe(sd), 'state_dict': sd}, path)
    return path, sd


def _expert_params(sd, block, router_rows=True):
    p = f'{block}.ffn.collab_experts.'
    rows = 2 * sd[f'{block}.ffn.collab_router.gate.weight'][0].numel()
    return sum(sd[p + n][0].numel() for n in ('w1', 'b1', 'w2', 'b2')) + \
        (rows if router_rows else 0)


def test_extract_prune_merge_counts_1b(full_1b, tmp_path, capsys):
    src, full = full_1b
    n_full = count_params(full)
    assert n_full == pytest.approx(14.7e9, rel=0.01)

    opt = tmp_path / 'opt.pth'
    converter('extract_modality').main(
        [str(src), str(opt), '--modalities', 'opt'])
    n_opt = _printed_after(capsys.readouterr().out)
    opt_sd = read(opt)['state_dict']
    assert n_opt == count_params(opt_sd)
    assert n_opt == pytest.approx(6.5e9, rel=0.01)

    # planted usage: opt prefers expert (block index mod 4)
    meta = describe(opt_sd)
    stats = {}
    for i, b in enumerate(meta['blocks']):
        counts = torch.tensor([5, 3, 2, 1]).roll(i % 4)
        stats[b] = {'tokens': {'opt': int(counts.sum())},
                    'collaborative': {'opt': counts},
                    'specialized': {'opt': torch.ones(4)}}
    usage = tmp_path / 'usage.json'
    save_usage(usage_from_stats(stats, meta), str(usage))
    ep = tmp_path / 'ep.pth'
    converter('prune_experts').main([str(opt), str(usage), str(ep)])
    n_ep = _printed_after(capsys.readouterr().out)
    ep_ckpt = read(ep)
    assert ep_ckpt['meta']['arch']['num_collab_experts'] == 1
    # the experts go; the router keeps its 4 rows (gate and noise) and a
    # kept-experts mask (issue 13 item 7)
    removed = 3 * sum(_expert_params(opt_sd, b, router_rows=False)
                      for b in meta['blocks'])
    assert n_ep == n_opt - removed == count_params(ep_ckpt['state_dict'])
    assert ep_ckpt['meta']['arch']['num_collab_router_experts'] == 4
    # 4.3B in the paper; one of four collaborative experts per block leaves
    # the 4 specialized + 1 collaborative + shared experts: 4.48B here
    assert 4.3e9 <= n_ep <= 4.5e9
    with torch.device('meta'):
        rebuilt = RingMoE(arch=dict(base='1b', num_collab_experts=1,
                                    num_collab_router_experts=4),
                          modalities=('opt', ))
    assert sum(p.numel() for p in rebuilt.parameters()) == n_ep
    # the -ep backbone config builds exactly this model: every tensor fits
    from mmengine.config import Config

    from mmringmoe.engine.checkpoint import fit_state_dict
    bb = Config.fromfile(f'{ROOT}/configs/_base_/backbones/ringmoe-opt-ep.py'
                         ).backbone.to_dict()
    bb.pop('type'), bb.pop('init_cfg')
    with torch.device('meta'):
        from_cfg = RingMoE(**bb)
    report = fit_state_dict(from_cfg, ep_ckpt['state_dict'], prefixes=())
    assert report.loaded == report.total and not report.mismatched
    assert not report.unused
    # the renormalised variant also drops the router rows
    ep_r = tmp_path / 'ep_r.pth'
    converter('prune_experts').main([str(opt), str(usage), str(ep_r),
                                     '--renormalise'])
    n_ep_r = _printed_after(capsys.readouterr().out)
    rows = 3 * sum(_expert_params(opt_sd, b) - _expert_params(
        opt_sd, b, router_rows=False) for b in meta['blocks'])
    assert n_ep - n_ep_r == rows

    for method in ('ks', 'kc'):
        dense = tmp_path / f'{method}.pth'
        converter('merge_experts').main(
            [str(ep), str(dense), '--method', method])
        n_dense = _printed_after(capsys.readouterr().out)
        assert 1.0e9 <= n_dense <= 1.1e9  # 1B in the paper
    with torch.device('meta'):
        ref = RingMoE('1b', modalities=('opt', ), moe_mode='dense')
    assert n_dense == sum(p.numel() for p in ref.parameters())
    print(f'\n1b counts: full {n_full:,}  opt {n_opt:,}  EP {n_ep:,}  '
          f'EP renormalised {n_ep_r:,}  dense {n_dense:,}')


def test_keep_ratio_ladder_1b(full_1b, tmp_path):
    """Tab. A1: top 25 / 50 / 75% keep 1 / 2 / 3 of 4 experts per block."""
    from mmringmoe.models.pruning import (extract_modalities, load_usage,
                                          prune_by_usage)
    _, full = full_1b
    meta, opt_sd = extract_modalities(full, ['opt'])
    stats = {b: {'tokens': {'opt': 10},
                 'collaborative': {'opt': torch.tensor([4, 3, 2, 1])},
                 'specialized': {}} for b in meta['blocks']}
    path = tmp_path / 'u.json'
    save_usage(usage_from_stats(stats, meta), str(path))
    usage = load_usage(str(path))
    counts = {}
    for ratio in (0.25, 0.5, 0.75):
        new_meta, sd = prune_by_usage(opt_sd, meta, usage, keep_ratio=ratio)
        assert new_meta['arch']['num_collab_experts'] == int(ratio * 4)
        counts[ratio] = count_params(sd)
    assert counts[0.25] < counts[0.5] < counts[0.75] < count_params(opt_sd)
    print('\n1b EP ladder:', {k: f'{v / 1e9:.2f}B' for k, v in counts.items()})
