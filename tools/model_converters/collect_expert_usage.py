"""Measure expert activation frequencies f(E_k | x_m) (paper Eq. 15).

    python tools/model_converters/collect_expert_usage.py CONFIG CKPT \
        --out work_dirs/usage.json [--max-samples 2000]

Runs the config's test (else val, else train) data set through the RingMoE
backbone in eval mode (no gating noise) with routing statistics on, and
writes, for every block, modality and expert (collaborative and specialized),
the fraction of that modality's tokens routed to it, with the architecture
it was measured on (prune_experts.py checks it). A heatmap (blocks x experts,
one panel per modality) is written beside the JSON (``--png`` to move it).

The backbone is rebuilt from the checkpoint's own architecture; the config
supplies the data pipeline and the model around the backbone. CKPT may be a
converter checkpoint (backbone keys) or a whole-model checkpoint
(``backbone.`` keys, e.g. a MIM run).
"""
import argparse
import os.path as osp
import sys

import torch


def parse_args(argv):
    from mmringmoe.engine.cli import CfgOptionsAction
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out', required=True, help='usage JSON to write')
    p.add_argument('--png', default=None,
                   help='heatmap path (default: OUT with .png)')
    p.add_argument('--max-samples', type=int, default=None,
                   help='stop after this many images (default: all)')
    p.add_argument('--split', choices=('test', 'val', 'train'), default=None,
                   help='which dataloader of the config to use')
    p.add_argument('--modality', default=None,
                   help='modality of single-tensor inputs (default: the '
                   "config backbone's first modality)")
    p.add_argument('--num-workers', type=int, default=None)
    p.add_argument('--device', default='cpu')
    p.add_argument('--force', action='store_true')
    p.add_argument('--quiet', action='store_true',
                   help='no progress bar (shown only on a terminal)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return p.parse_args(argv)


def _find_backbone(model):
    found = [m for m in model.modules()
             if hasattr(m, 'record_routing_stats')
             and hasattr(m, 'routing_stats')]
    if not found:
        raise ValueError('the config model holds no RingMoE backbone')
    return found[0]


def _load_weights(model, backbone, path, sd, other):
    from mmringmoe.engine.checkpoint import check_report, fit_state_dict
    from mmringmoe.models.pruning.checkpoint import is_buffer
    if other:  # a whole-model checkpoint: decoders, heads, ... (reported)
        report = fit_state_dict(model, other, prefixes=(), exclude=backbone)
        check_report(report, f'{path} (besides the backbone)',
                     type(model).__name__, min_loaded=None)
        model.load_state_dict(report.state_dict, strict=False)
    # assign: the model takes the loaded tensors, no second copy in memory
    sd = {k: v.float() if v.is_floating_point() else v
          for k, v in sd.items()}
    report = fit_state_dict(backbone, sd, prefixes=())
    check_report(report, path, type(backbone).__name__, min_loaded=1.0)
    missing, unexpected = backbone.load_state_dict(sd, strict=False,
                                                   assign=True)
    missing = [k for k in missing if not is_buffer(k)]
    if missing or unexpected:
        raise ValueError(f'{path} does not fit the rebuilt backbone: missing '
                         f'{missing[:5]}, unexpected {unexpected[:5]}')


def _num_samples(data):
    samples = data.get('data_samples')
    if isinstance(samples, dict):  # multi-modal MIM batches: per modality
        return sum(len(v) for v in samples.values())
    if samples is not None:
        return len(samples)
    x = data['inputs']
    if isinstance(x, dict):
        return sum(len(v) for v in x.values())
    return len(x)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import Runner

    from mmringmoe.engine.checkpoint import load_weights_only
    from mmringmoe.models.pruning import (backbone_cfg, describe, plot_usage,
                                          save_usage, usage_from_stats)
    from mmringmoe.models.pruning.checkpoint import (check_output_path,
                                                     split_checkpoint)

    png = args.png or osp.splitext(args.out)[0] + '.png'
    for out in (args.out, png, osp.splitext(png)[0] + '_curves.png'):
        check_output_path(out, [args.config, args.checkpoint], args.force)
    meta, sd, other = split_checkpoint(load_weights_only(args.checkpoint),
                                       args.checkpoint)
    meta = describe(sd, meta)
    if meta['moe_mode'] != 'sparse':
        raise ValueError(f'{args.checkpoint} is a dense model: it has no '
                         'experts to measure')

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmringmoe'))
    import mmringmoe  # noqa: F401  (registers our classes)
    bb_cfg = cfg.model.get('backbone')
    if bb_cfg is None or 'RingMoE' not in str(bb_cfg.get('type', '')):
        raise ValueError(f'{args.config}: model.backbone is not a RingMoE')
    cfg_mods = list(bb_cfg.get('modalities') or meta['modalities'])
    modality = args.modality or cfg_mods[0]
    if modality not in meta['modalities']:
        raise ValueError(f'unknown modality {modality!r}: the checkpoint '
                         f'holds {meta["modalities"]}')
    # the checkpoint decides the architecture (e.g. per-block expert counts)
    kwargs = backbone_cfg(meta)
    mods = [modality] + [m for m in meta['modalities'] if m != modality]
    kwargs['modalities'] = tuple(mods)
    bb_cfg.update(kwargs)
    bb_cfg['init_cfg'] = None
    model = MODELS.build(cfg.model)
    backbone = _find_backbone(model)
    _load_weights(model, backbone, args.checkpoint, sd, other)
    del sd, other
    model.to(args.device).eval()

    split = args.split or next(
        (s for s in ('test', 'val', 'train')
         if cfg.get(f'{s}_dataloader') is not None), None)
    if split is None or cfg.get(f'{split}_dataloader') is None:
        raise ValueError(f'{args.config} has no {split or "any"} dataloader')
    dl_cfg = cfg[f'{split}_dataloader']
    if args.num_workers is not None:
        dl_cfg['num_workers'] = args.num_workers
        if args.num_workers == 0:
            dl_cfg['persistent_workers'] = False
    loader = Runner.build_dataloader(dl_cfg)

    backbone.reset_routing_stats()
    backbone.record_routing_stats(True)
    seen = 0
    from mmringmoe.visualization.progress import progress
    with torch.no_grad():
        for batch in progress(loader, desc=f'expert usage ({split})',
                              quiet=args.quiet, unit='batch'):
            data = model.data_preprocessor(batch, False)
            x = data['inputs']
            if isinstance(x, torch.Tensor):
                backbone(x, modality=modality)
            elif isinstance(x, dict) and all(
                    isinstance(v, torch.Tensor) for v in x.values()):
                backbone(x)
            else:
                model._run_forward(data, mode='tensor')
            seen += _num_samples(data)
            if args.max_samples and seen >= args.max_samples:
                break
    backbone.record_routing_stats(False)
    if not seen:
        raise ValueError(f'the {split} data set of {args.config} is empty')

    usage = usage_from_stats(
        backbone.routing_stats(), meta,
        source=dict(config=args.config, checkpoint=args.checkpoint,
                    split=split, num_samples=seen))
    save_usage(usage, args.out)
    plot_usage(usage, png)
    # per-modality activation curves (Appendix B.4) beside the heatmap
    from mmringmoe.visualization.analysis import plot_activation_curves
    curves = plot_activation_curves(usage, osp.splitext(png)[0] + '_curves.png')
    tokens = usage['layers'][usage['blocks'][0]]['tokens']
    print(f'{seen} samples ({split}), tokens per modality in block 0: '
          f'{tokens}')
    print(f'wrote {args.out}, {png} and {curves}')


if __name__ == '__main__':
    from mmringmoe.models.pruning.cli import run
    sys.exit(run(main))
