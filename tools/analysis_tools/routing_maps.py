"""Expert routing maps of one image: which collaborative and which
specialized expert every token chose, the gate values and the routers'
entropy, for chosen RMoE blocks.

    python tools/analysis_tools/routing_maps.py CONFIG CHECKPOINT IMAGE \
        --out DIR [--blocks stages.2.blocks.0 3.1 ...] [--modality ms] \
        [--cfg-options k=v ...]

The image goes through the config's test pipeline (annotation loaders left
out) and data preprocessor, then the model's RingMoE backbone in eval mode
(no gating noise). Writes to DIR:

* ``<block>.png`` per block: the display image of IMAGE
  (:func:`mmringmoe.visualization.display_image`, any modality), the expert
  chosen per token by the collaborative and by the modality's specialized
  router (top-1, colours per expert id), the two gate values and the two
  router entropies (nats), upscaled to the image at token resolution;
* ``routing_maps.npz``: per block ``<block>/<router>/{expert,gate,entropy}``
  arrays (expert and gate ``(k, h, w)``, entropy ``(h, w)``) at token
  resolution over the whole network input (padding included);
* ``routing_maps.json``: per block the token grid, the stride and the
  tokens per expert of each map (every top-k choice counted, as
  ``RingMoE.record_routing_stats`` counts them).

Default blocks: the last block of every stage. Not for pipelines that need a
second file (change detection pairs, optical+SAR pairs).
"""
import json
import os
import os.path as osp
import sys

if __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: pipeline steps that need annotations (left out for a bare image)
_SKIP = ('Annotation', 'Label', 'DSM')


def parse_args(argv=None):
    from mmringmoe.visualization.analysis import analysis_arg_parser
    p = analysis_arg_parser(__doc__, out_help='output folder', image=True,
                            quiet=False)
    p.add_argument('--blocks', nargs='+', default=None,
                   help="'stages.i.blocks.j' or 'i.j' (default: the last "
                   'block of each stage); "all" for every block')
    p.add_argument('--modality', default=None,
                   help="default: the config backbone's first modality")
    return p.parse_args(argv)


def load_model(config, checkpoint, cfg_options=None, device='cpu'):
    """``(cfg, model, backbone)``; the checkpoint must hold the backbone."""
    from mmringmoe.visualization.analysis import find_backbone
    from mmringmoe.visualization.analysis import load_model as _load
    cfg, model = _load(config, checkpoint, cfg_options, device,
                       require='backbone')
    return cfg, model, find_backbone(model)


def prepare(cfg, model, image):
    """IMAGE through the test pipeline (annotation steps left out) and the
    data preprocessor. Returns ``(inputs (1, C, H, W), results)``."""
    from mmengine.dataset import Compose
    dl = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if dl is None:
        raise ValueError('the config has no test or val dataloader')
    steps = [t for t in dl['dataset']['pipeline']
             if not any(s in str(t.get('type', '')) for s in _SKIP)]
    from mmringmoe.visualization.analysis import config_scope
    with config_scope(cfg):
        pipeline = Compose(steps)
        packed = pipeline(dict(img_path=image, seg_fields=[],
                               reduce_zero_label=False, img_id=0))
        data = model.data_preprocessor(
            dict(inputs=[packed['inputs']], data_samples=[packed[
                'data_samples']]), False)
    inputs = data['inputs']
    if not isinstance(inputs, torch.Tensor):
        raise ValueError('routing maps need single-image inputs; the config '
                         f'gives {type(inputs).__name__}')
    return inputs, packed['data_samples'].metainfo


def default_blocks(backbone):
    names = list(backbone.rmoe_layers())
    last = {}
    for n in names:
        last[n.split('.blocks.')[0]] = n
    return list(last.values())


def resolve_blocks(backbone, blocks):
    if not blocks:
        return default_blocks(backbone)
    if blocks == ['all']:
        return list(backbone.rmoe_layers())
    out = []
    for b in blocks:
        if not b.startswith('stages.'):
            i, j = b.split('.')
            b = f'stages.{i}.blocks.{j}'
        out.append(b)
    return out


def routing_maps(backbone, inputs, modality, blocks=None):
    """Forward ``inputs`` once; the :class:`RoutingRecorder` with the maps."""
    from mmringmoe.visualization.analysis import RoutingRecorder
    with torch.no_grad(), RoutingRecorder(backbone, blocks) as rec:
        backbone(inputs, modality=modality)
    return rec


def main(argv=None):
    from mmringmoe.engine.cli import run_cli  # one-line errors
    return run_cli(run, parse_args(argv))


def run(args):
    """The tool on parsed arguments; returns the JSON summary."""
    from mmringmoe.engine.cli import UserError
    try:
        return _run(args)
    except ValueError as e:  # bad input: one line
        raise UserError(str(e)) from e


def _run(args):
    from mmringmoe.datasets.transforms.raster_io import read_raster_with_meta
    from mmringmoe.visualization import display_image
    from mmringmoe.visualization.analysis import routing_figure
    from PIL import Image

    cfg, model, backbone = load_model(args.config, args.checkpoint,
                                      args.cfg_options, args.device)
    modality = args.modality or backbone.modalities[0]
    inputs, meta = prepare(cfg, model, args.image)
    blocks = resolve_blocks(backbone, args.blocks)
    rec = routing_maps(backbone, inputs.to(args.device), modality, blocks)

    arr, geo = read_raster_with_meta(args.image)
    disp = display_image(arr, modality, geo.valid_mask).rgb
    h, w = meta.get('img_shape', disp.shape[:2])[:2]
    if (h, w) != disp.shape[:2]:  # the pipeline resized: follow it
        import cv2
        disp = cv2.resize(disp, (int(w), int(h)),
                          interpolation=cv2.INTER_NEAREST)
    k = max(1, int(np.ceil(256 / max(1, min(disp.shape[:2])))))
    disp = np.repeat(np.repeat(disp, k, 0), k, 1)  # small tiles: readable
    os.makedirs(args.out, exist_ok=True)
    arrays, summary = {}, {}
    in_h, in_w = inputs.shape[-2:]
    for b in blocks:
        r = rec.records[b]
        th, tw = r['hw']
        stride = int(np.ceil(in_h / th))
        entry = dict(hw=[th, tw], stride=stride, routers={})
        for key, e in r.items():
            if key == 'hw':
                continue
            for field in ('expert', 'gate', 'entropy'):
                arrays[f'{b}/{key}/{field}'] = e[field][0].numpy()
            entry['routers'][key] = dict(
                num_experts=e['num_experts'],
                tokens_per_expert=rec.histogram(b, key).tolist())
        summary[b] = entry
        fig = routing_figure(disp, r, b, modality, stride * k)
        Image.fromarray(fig).save(osp.join(args.out, f'{b}.png'),
                                  optimize=True)
    np.savez_compressed(osp.join(args.out, 'routing_maps.npz'), **arrays)
    with open(osp.join(args.out, 'routing_maps.json'), 'w') as f:
        json.dump(dict(image=args.image, modality=modality,
                       input_shape=[int(in_h), int(in_w)], blocks=summary),
                  f, indent=1)
    print(f'wrote {len(blocks)} block figures, routing_maps.npz and '
          f'routing_maps.json to {args.out}')
    return summary


if __name__ == '__main__':
    main()
