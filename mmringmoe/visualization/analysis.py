"""Analysis figures: expert routing maps, per-modality expert activation
curves (Appendix B.4), t-SNE of features (Fig. A4), confusion matrices
(Fig. A5).

Routing maps are recorded with forward hooks on the RMoE routers (no change
to the layer): :class:`RoutingRecorder`.
"""
import math
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .overlay import colormap, figure

#: categorical colours of expert ids (matplotlib tab20)
def expert_palette(n: int) -> List[tuple]:
    import matplotlib
    cmap = matplotlib.colormaps['tab20']
    return [tuple(int(255 * c + 0.5) for c in cmap(i % 20)[:3])
            for i in range(n)]


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """-sum p ln p over the last dim (nats); 0 ln 0 = 0."""
    p = probs.float()
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)


class RoutingRecorder:
    """Per-token routing decisions of a RingMoE backbone's RMoE layers.

    Forward hooks on each chosen block (its ``hw`` argument: the token grid)
    and on its routers (``NoisyTopKRouter`` returns the softmax ``probs``,
    the top-k ``gates`` and expert ids ``idx``) record, per block, for the
    collaborative router and for the specialized router of each modality:

    * ``expert``: ``(B, k, h, w)`` long, the chosen expert ids (rank order);
    * ``gate``: ``(B, k, h, w)`` float, the gate values of those choices
      (Eq. 13, not renormalised);
    * ``entropy``: ``(B, h, w)`` float, ``-sum_e p_e ln p_e`` of the router's
      softmax in nats (after expert pruning over the kept experts' columns,
      which then sum to <= 1).

    Token ``(i, j)`` of a stage grid covers input pixels
    ``[i * s, (i + 1) * s) x [j * s, (j + 1) * s)``, ``s = 4 * 2 ** stage``
    (patch size 4, patch merging 2x). Only the last forward is kept.

    Args:
        backbone: a ``mmringmoe.RingMoE`` in sparse mode.
        blocks (sequence of str, optional): ``'stages.i.blocks.j'`` names;
            None: every RMoE block.

    Raises:
        ValueError: a dense backbone, an unknown block name.
    """

    def __init__(self, backbone, blocks: Optional[Sequence[str]] = None):
        layers = backbone.rmoe_layers()
        if not layers:
            raise ValueError('the backbone has no RMoE layers (dense mode): '
                             'routing maps need the sparse model')
        blocks = list(layers) if not blocks else list(blocks)
        unknown = [b for b in blocks if b not in layers]
        if unknown:
            raise ValueError(f'unknown blocks {unknown}; RMoE blocks are '
                             f'{list(layers)}')
        self.backbone, self.blocks, self.layers = backbone, blocks, layers
        self.records: Dict[str, dict] = {}
        self._handles = []

    def __enter__(self):
        for name in self.blocks:
            layer = self.layers[name]
            block = self.backbone.get_submodule(name)
            self._handles.append(block.register_forward_pre_hook(
                self._hw_hook(name)))
            if hasattr(layer, 'collab_router'):
                self._handles.append(layer.collab_router.register_forward_hook(
                    self._router_hook(name, 'collaborative')))
            if hasattr(layer, 'specialized_routers'):
                for m, router in layer.specialized_routers.items():
                    self._handles.append(router.register_forward_hook(
                        self._router_hook(name, 'specialized', m)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hw_hook(self, name):
        def hook(module, args):
            self.records[name] = dict(hw=tuple(int(v) for v in args[1]))
        return hook

    def _router_hook(self, name, kind, modality=None):
        def hook(module, args, output):
            probs, gates, idx = output
            if probs.shape[0] == 0:  # absent modality (FSDP dispatch)
                return
            rec = self.records.setdefault(name, {})
            h, w = rec['hw']
            n = probs.shape[0] // (h * w)
            k = idx.shape[-1]
            entry = dict(
                expert=idx.detach().reshape(n, h, w, k).permute(0, 3, 1, 2)
                .cpu(),
                gate=gates.detach().float().reshape(n, h, w, k)
                .permute(0, 3, 1, 2).cpu(),
                entropy=_entropy(probs.detach()).reshape(n, h, w).cpu(),
                num_experts=int(module.num_experts))
            key = kind if modality is None else f'{kind}.{modality}'
            rec[key] = entry
        return hook

    def histogram(self, block: str, key: str) -> np.ndarray:
        """Tokens per expert of a recorded map (every top-k choice counts):
        the same counting as ``RingMoE.record_routing_stats``."""
        e = self.records[block][key]
        return np.bincount(e['expert'].reshape(-1).numpy(),
                           minlength=e['num_experts'])


def routing_figure(display: np.ndarray, record: dict, block: str,
                   modality: str, stride: int, sample: int = 0
                   ) -> np.ndarray:
    """One block's routing maps beside the image: collaborative and
    specialized expert (top-1 choice) per token, their gate values and the
    two routers' entropies, each upscaled to the image (nearest).

    Args:
        display (np.ndarray): uint8 ``(H, W, 3)`` display of the image (the
            top-left part of the possibly padded network input).
        record (dict): ``RoutingRecorder.records[block]``.
        block (str): Block name (title).
        modality (str): Which specialized router.
        stride (int): Input pixels per token side (4 * 2 ** stage).
        sample (int): Batch index.

    Returns:
        np.ndarray: uint8 RGB figure.
    """
    h_img, w_img = display.shape[:2]
    h, w = record['hw']
    panels, lines = [], []
    maps = {}
    for kind in ('collaborative', f'specialized.{modality}'):
        if kind in record:
            e = record[kind]
            maps[kind] = (e['expert'][sample, 0].numpy(),
                          e['gate'][sample, 0].numpy(),
                          e['entropy'][sample].numpy(), e['num_experts'])
    ch, cw = min(h, math.ceil(h_img / stride)), min(w, math.ceil(
        w_img / stride))

    def up(a):
        a = a[:ch, :cw]
        return np.repeat(np.repeat(a, stride, 0), stride, 1)[:h_img, :w_img]

    panels.append(('image', display[:h_img, :w_img]))
    swatches = None
    for kind, (expert, gate, ent, n) in maps.items():
        short = 'collab.' if kind == 'collaborative' else 'special.'
        pal = expert_palette(n)
        rgb = np.asarray(pal, np.uint8)[up(expert)]
        panels.append((f'{short} expert', rgb))
        swatches = swatches or ([f'expert {i}' for i in range(n)], pal)
    for kind, (expert, gate, ent, n) in maps.items():
        short = 'collab.' if kind == 'collaborative' else 'special.'
        panels.append((f'{short} gate', colormap(up(gate), 0.0, 1.0)))
    for kind, (expert, gate, ent, n) in maps.items():
        short = 'collab.' if kind == 'collaborative' else 'special.'
        panels.append((f'{short} entropy', colormap(
            up(ent), 0.0, math.log(n), cmap='magma')))
        lines.append(f'{short} router entropy 0 .. ln {n} = {math.log(n):.2f} '
                     'nats (magma)')
    lines.insert(0, f'{block} ({modality}): {h} x {w} tokens, {stride} px per '
                 'token side; top-1 choices; gate 0 .. 1 (viridis)')
    fig = figure(panels, lines, swatches=swatches)
    return fig


# ------------------------------------------------------------ B.4 curves
def plot_activation_curves(usage: dict, path: str,
                           blocks: Optional[Sequence[str]] = None,
                           expert_type: str = 'collaborative',
                           max_blocks: int = 8) -> str:
    """Per-modality activation frequency curves f(E_k | x_m) (Eq. 15) in the
    style of Appendix B.4.

    For each block (up to ``max_blocks``, evenly spread, unless ``blocks``):
    top row, the frequency of every expert by id, one line per modality (which
    experts each modality shares); bottom row, each modality's frequencies
    sorted in decreasing order (the long tail) with its pruning threshold
    phi = 75th percentile (Eq. 16) dashed.

    Args:
        usage (dict): ``usage_from_stats`` output (collect_expert_usage JSON).
        path (str): PNG to write.

    Returns:
        str: ``path``.

    Raises:
        ValueError: no frequencies of ``expert_type`` in ``usage``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    all_blocks = [b for b in usage['blocks']
                  if usage['layers'][b].get(expert_type)]
    if not all_blocks:
        raise ValueError(f'no {expert_type} expert usage to plot')
    if blocks is None:
        if len(all_blocks) > max_blocks:
            pick = np.linspace(0, len(all_blocks) - 1, max_blocks)
            blocks = [all_blocks[int(round(i))] for i in pick]
        else:
            blocks = all_blocks
    mods = [m for m in usage['modalities']
            if any(m in usage['layers'][b][expert_type] for b in blocks)]
    colors = dict(opt='tab:blue', ms='tab:green', sar_l1='tab:red',
                  sar_l2='tab:orange')
    fig, axes = plt.subplots(2, len(blocks), squeeze=False,
                             figsize=(2.3 * len(blocks) + 0.8, 4.2),
                             layout='constrained')
    for c, b in enumerate(blocks):
        freqs = usage['layers'][b][expert_type]
        top, bot = axes[0][c], axes[1][c]
        for m in mods:
            f = np.asarray(freqs.get(m, []), float)
            if not f.size:
                continue
            col = colors.get(m)
            top.plot(np.arange(f.size), f, marker='o', ms=2.5, lw=1,
                     color=col, label=m)
            s = np.sort(f)[::-1]
            bot.plot(np.arange(1, s.size + 1), s, lw=1, color=col, label=m)
            bot.axhline(np.percentile(f, 75), color=col, lw=0.8, ls='--')
        from matplotlib.ticker import MaxNLocator
        for ax in (top, bot):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        label = b.replace('stages.', 's').replace('.blocks.', '.b')
        top.set_title(label, fontsize=8)
        top.set_xlabel('expert id', fontsize=7)
        bot.set_xlabel('rank', fontsize=7)
        for ax in (top, bot):
            ax.tick_params(labelsize=6)
            ax.set_ylim(bottom=0)
        if c == 0:
            top.set_ylabel(f'f(E_k | x_m), {expert_type}', fontsize=7)
            bot.set_ylabel('sorted; -- phi = P75', fontsize=7)
    axes[0][-1].legend(fontsize=6, loc='upper right')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------ models, data
def find_backbone(model):
    """The model's RingMoE (the module with ``rmoe_layers``).

    Raises:
        ValueError: there is none.
    """
    found = [m for m in model.modules() if hasattr(m, 'rmoe_layers')]
    if not found:
        raise ValueError('the config model holds no RingMoE backbone')
    return found[0]


@contextmanager
def config_scope(cfg):
    """The config's ``default_scope`` current inside the block (restored
    after), so its unprefixed types are found."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', None) or 'mmringmoe'):
        yield


def analysis_arg_parser(doc: str, out_help: str = 'PNG to write',
                        image: bool = False, quiet: bool = True):
    """The command line the model analysis tools share
    (``tools/analysis_tools/tsne.py``, ``confusion_matrix.py``,
    ``routing_maps.py``): ``CONFIG CHECKPOINT [IMAGE] --out OUT
    [--device cpu] [--quiet] [--cfg-options k=v ...]``, the arguments
    :func:`load_model` takes. The tool adds its own options and parses.

    Args:
        doc (str): the tool's module docstring (its first line is the
            description).
        out_help (str): help text of ``--out``.
        image (bool): add the positional ``image`` after the checkpoint.
        quiet (bool): add ``--quiet`` (no progress bar).

    Returns:
        argparse.ArgumentParser
    """
    import argparse

    from mmringmoe.engine.cli import CfgOptionsAction
    p = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint')
    if image:
        p.add_argument('image')
    p.add_argument('--out', required=True, help=out_help)
    p.add_argument('--device', default='cpu')
    if quiet:
        p.add_argument('--quiet', action='store_true',
                       help='no progress bar')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help='override config settings, key=value')
    return p


def load_model(config: str, checkpoint: str, cfg_options=None,
               device: str = 'cpu', require: str = 'all'):
    """Config and model of a config with a checkpoint's weights, in eval
    mode, with the config's registry scope current.

    Args:
        require (str): ``'all'``: every model weight must be in the
            checkpoint; ``'backbone'``: only the RingMoE backbone's.

    Returns:
        tuple: ``(cfg, model)``.

    Raises:
        ValueError: the checkpoint lacks required weights (one line naming
        the file, the count and an example key).
    """
    from mmengine.registry import MODELS

    from mmringmoe.engine import cli
    from mmringmoe.engine.checkpoint import load_weights_only
    cfg = cli.load_config(config, cfg_options)
    cli.import_scope(cfg)
    cli.scope_prefixed_types(cfg)
    with config_scope(cfg):
        model = MODELS.build(cfg.model)
    ckpt = load_weights_only(checkpoint)
    sd = ckpt.get('state_dict', ckpt)
    missing, _ = model.load_state_dict(sd, strict=False)
    if require == 'backbone':
        bb = find_backbone(model)
        prefix = next(n for n, m in model.named_modules() if m is bb) + '.'
        missing = [k for k in missing if k.startswith(prefix)]
    # Swin V2's position buffers are rebuilt at construction from the window
    # size (an upstream Swin V2 deletes them at load); any other buffer, e.g.
    # a BatchNorm's running statistics, must come from the checkpoint
    missing = [k for k in missing if not k.endswith(
        ('relative_position_index', 'relative_coords_table'))]
    if missing:
        raise ValueError(f'{checkpoint} lacks {len(missing)} weights of the '
                         f'model of {config} (e.g. {missing[0]})')
    return cfg, model.to(device).eval()


def build_test_loader(cfg, split: str = 'test', batch_size=None):
    """The config's ``<split>_dataloader`` built with mmengine's Runner
    (no worker processes: analysis runs in the tool's process)."""
    from mmengine.runner import Runner
    dl = cfg.get(f'{split}_dataloader')
    if dl is None:
        raise ValueError(f'the config has no {split}_dataloader')
    dl = dict(dl)
    dl['num_workers'] = 0
    dl['persistent_workers'] = False
    if batch_size:
        dl['batch_size'] = batch_size
    with config_scope(cfg):
        return Runner.build_dataloader(dl)


def confusion_matrix(pred, target, num_classes: int,
                     ignore_index: Optional[int] = 255) -> np.ndarray:
    """Confusion matrix ``(num_classes, num_classes)`` int64: rows ground
    truth, columns prediction; pixels/labels with ``target == ignore_index``
    (or outside ``[0, num_classes)``) are left out. Counted by mmpretrain's
    ``ConfusionMatrix.calculate``.
    """
    from mmpretrain.evaluation import ConfusionMatrix
    p = torch.as_tensor(np.asarray(pred)).reshape(-1).long()
    t = torch.as_tensor(np.asarray(target)).reshape(-1).long()
    keep = (t >= 0) & (t < num_classes)
    if ignore_index is not None:
        keep &= t != ignore_index
    if ((p[keep] < 0) | (p[keep] >= num_classes)).any():
        raise ValueError(f'predictions outside 0..{num_classes - 1}')
    return ConfusionMatrix.calculate(p[keep], t[keep],
                                     num_classes=num_classes).numpy()


# ------------------------------------------------------------ t-SNE, CM
def tsne_figure(points: np.ndarray, labels: np.ndarray,
                class_names: Sequence[str], path: str,
                title: str = 't-SNE') -> str:
    """Scatter of 2-D t-SNE points coloured by class, legend with names."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout='constrained')
    pal = expert_palette(max(len(class_names), 1))
    for i, name in enumerate(class_names):
        sel = labels == i
        if sel.any():
            ax.scatter(points[sel, 0], points[sel, 1], s=10,
                       color=np.asarray(pal[i]) / 255, label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, markerscale=1.5, loc='center left',
              bbox_to_anchor=(1.0, 0.5))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str],
                     path: str, normalize: bool = True,
                     title: str = 'confusion matrix') -> str:
    """Heatmap of a confusion matrix (rows: ground truth, columns:
    prediction), row-normalised (recall per class) unless ``normalize`` is
    False; counts written in the cells when there are at most 20 classes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    m = np.asarray(matrix, np.float64)
    shown = m / np.maximum(m.sum(1, keepdims=True), 1) if normalize else m
    n = len(class_names)
    size = 1.6 + 0.38 * n
    fig, ax = plt.subplots(figsize=(size + 1.0, size), layout='constrained')
    im = ax.imshow(shown, cmap='Blues', vmin=0,
                   vmax=1 if normalize else None)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(class_names, rotation=60, ha='right', fontsize=7)
    ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel('prediction', fontsize=8)
    ax.set_ylabel('ground truth', fontsize=8)
    ax.set_title(title, fontsize=9)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                v = int(m[i, j])
                ax.text(j, i, str(v), ha='center', va='center', fontsize=6,
                        color='white' if shown[i, j] > 0.6 * (
                            shown.max() or 1) else 'black')
    fig.colorbar(im, ax=ax, label='fraction of row' if normalize else 'count')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = [
    'RoutingRecorder', 'routing_figure', 'expert_palette', 'find_backbone',
    'config_scope', 'analysis_arg_parser', 'load_model', 'build_test_loader', 'confusion_matrix',
    'plot_activation_curves', 'tsne_figure', 'confusion_figure'
]
