"""Expert activation frequencies f(E_k | x_m) (paper Eq. 15).

``usage_from_stats`` turns the counts a ``RingMoE`` gathers with
``record_routing_stats(True)`` into frequencies; the JSON written by
``save_usage`` carries the architecture it was measured on so that
``check_usage`` can refuse a usage file from another model.

Usage file layout::

    {'format': 'mmringmoe-expert-usage/1',
     'arch': {...}, 'modalities': [...], 'num_collab_experts': [per block],
     'num_specialized_experts': [per block], 'blocks': [...],
     'source': {...},
     'layers': {block: {'tokens': {mod: n},
                        'collaborative': {mod: [f_1, ..., f_NC]},
                        'specialized': {mod: [f_1, ..., f_NS]}}}}
"""
import json
import math

FORMAT = 'mmringmoe-expert-usage/1'


def _as_list(x, n):
    return list(x) if isinstance(x, (list, tuple)) else [x] * n


def usage_from_stats(stats, meta, source=None):
    """Frequencies per block, modality and expert from routing counts.

    ``stats`` is ``RingMoE.routing_stats()``: per block, the number of tokens
    of each modality sent to each expert (top-k picks; with k > 1 a token is
    counted once per pick, so the frequencies of a modality sum to k).
    """
    blocks = meta['blocks']
    missing = [b for b in blocks if b not in stats]
    if missing:
        raise ValueError(f'routing stats lack blocks {missing[:3]}...; was '
                         'record_routing_stats(True) set before the forward?')
    layers = {}
    for b in blocks:
        st = stats[b]
        tokens = {m: int(n) for m, n in st.get('tokens', {}).items()}
        entry = {'tokens': tokens}
        for etype in ('collaborative', 'specialized'):
            per_mod = {}
            for m, counts in (st.get(etype) or {}).items():
                n = tokens.get(m, 0)
                counts = [float(c) for c in counts.tolist()] if hasattr(
                    counts, 'tolist') else [float(c) for c in counts]
                per_mod[m] = [c / n if n else 0.0 for c in counts]
            entry[etype] = per_mod
        layers[b] = entry
    n_blocks = len(blocks)
    return {
        'format': FORMAT,
        'arch': meta['arch'],
        'modalities': list(meta['modalities']),
        'num_collab_experts': _as_list(meta.get('num_collab_experts', 0),
                                       n_blocks),
        'num_specialized_experts': _as_list(
            meta.get('num_specialized_experts', 0), n_blocks),
        'blocks': list(blocks),
        'source': source or {},
        'layers': layers,
    }


def save_usage(usage, path):
    with open(path, 'w') as f:
        json.dump(usage, f, indent=1)


def load_usage(path):
    with open(path) as f:
        usage = json.load(f)
    if usage.get('format') != FORMAT:
        raise ValueError(f'{path} is not an expert usage file written by '
                         f'collect_expert_usage.py (format {FORMAT!r})')
    return usage


def check_usage(usage, meta, path='usage file'):
    """Raise unless ``usage`` was measured on the architecture of ``meta``."""
    a, b = usage['arch'], meta['arch']
    for key in ('embed_dims', 'depths', 'num_heads'):
        if list(_as_list(a[key], 1)) != list(_as_list(b[key], 1)):
            raise ValueError(
                f'{path} was measured on another architecture: {key} '
                f'{a[key]} there, {b[key]} in the checkpoint')
    n_blocks = len(meta['blocks'])
    want = _as_list(meta.get('num_collab_experts', 0), n_blocks)
    if usage['blocks'] != list(meta['blocks']) or \
            usage['num_collab_experts'] != want:
        raise ValueError(
            f'{path} was measured on another architecture: collaborative '
            f'experts per block {usage["num_collab_experts"]} there, {want} '
            'in the checkpoint')
    for b in usage['blocks']:
        for m, f in usage['layers'][b]['collaborative'].items():
            if len(f) != usage['num_collab_experts'][usage['blocks'].index(b)]:
                raise ValueError(f'{path}: {b} {m} lists {len(f)} experts')


def percentile(values, q):
    """Linear-interpolation percentile (numpy's default), q in [0, 100]."""
    v = sorted(values)
    if not v:
        raise ValueError('percentile of no values')
    pos = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def plot_usage(usage, path, expert_types=('collaborative', 'specialized')):
    """Heatmaps of f(E_k | x_m): blocks (rows) x experts (columns).

    One panel per modality; one row of panels per expert type that was
    measured (collaborative first: the one EP prunes).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    blocks = usage['blocks']
    rows = []
    for etype in expert_types:
        mods = [m for m in usage['modalities']
                if any(m in usage['layers'][b].get(etype, {})
                       for b in blocks)]
        if mods:
            rows.append((etype, mods))
    if not rows:
        raise ValueError('no expert usage to plot')
    ncols = max(len(mods) for _, mods in rows)
    width = max(len(f) for b in blocks for etype, _ in rows
                for f in usage['layers'][b][etype].values())
    fig, axes = plt.subplots(
        len(rows), ncols, squeeze=False, layout='constrained',
        figsize=(1.5 + (0.4 * width + 1.0) * ncols,
                 len(rows) * (1.2 + 0.2 * len(blocks))))
    labels = [b.replace('stages.', 's').replace('.blocks.', '.b')
              for b in blocks]
    for r, (etype, mods) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(mods):
                ax.axis('off')
                continue
            grid = np.full((len(blocks), width), np.nan)
            for i, b in enumerate(blocks):
                f = usage['layers'][b][etype].get(mods[c], [])
                grid[i, :len(f)] = f
            im = ax.imshow(grid, aspect='auto', cmap='viridis', vmin=0.0,
                           vmax=1.0, interpolation='nearest')
            ax.set_title(f'{mods[c]}: {etype}', fontsize=9)
            ax.set_xlabel('expert', fontsize=8)
            ax.set_xticks(range(width))
            ax.set_yticks(range(len(blocks)))
            ax.set_yticklabels(labels if c == 0 else [], fontsize=6)
    fig.colorbar(im, ax=axes.ravel().tolist(), label='f(E_k | x_m)')
    fig.savefig(path, dpi=120, bbox_inches='tight')
    plt.close(fig)
