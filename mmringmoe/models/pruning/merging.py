"""Dense expert integration: KS, KA, KC (paper Eq. 17-20, Appendix B.4.2).

Each RMoE layer becomes one FFN with the names of a dense RingMoE (and of
mmpretrain's Swin V2): ``ffn.layers.0.0`` (C -> H) and ``ffn.layers.1``
(H -> C), in ``nn.Linear``'s (out, in) layout, while experts are stored in
the ``x @ w`` layout (``w1``: (N, C, H)).

- KS: W = sum of all kept experts' weights (specialized of the kept
  modalities, collaborative, shared), same for the biases.
- KA: the mean of the same set, biases averaged too.
- KC: every specialized and collaborative weight matrix is replaced by its
  rank-K truncated SVD with K = C // N for its expert type (C the block width,
  N the number of experts of that type in the layer), so the concatenated
  factors of Eq. 19 have rank <= C; then W = M^S + M^C + W_shared (Eq. 20).
  The paper says nothing about biases; we sum them as KS does, so KC with
  full rank K is exactly KS (biases and all).

With more than one modality kept, the specialized experts of all of them
form one expert type (N = N_S * number of modalities). All functions work
on meta tensors (shapes only; no SVD is run).
"""
from collections import OrderedDict

import torch

from .checkpoint import describe, is_sparse

METHODS = ('ks', 'ka', 'kc')


def truncate(w, rank, dtype=torch.float64, device=None):
    """Rank-``rank`` truncated SVD of a matrix (Eq. 18), in ``w``'s dtype.

    U_K Sigma_K V_K^T equals U_K U_K^T W, the projection of W onto its top-K
    left singular vectors; those are taken from ``eigh`` of the Gram matrix
    of W's short side, in float64 (about 5x faster than an SVD on CPU, same
    result to ~1e-9 on random 512 x 2048 matrices). ``device`` runs it
    elsewhere (e.g. ``'cuda'``); the result comes back to ``w``'s device.
    """
    if w.is_meta or rank >= min(w.shape):
        return w.clone() if not w.is_meta else torch.empty_like(w)
    x = w.to(device=device, dtype=dtype)
    wide = x.shape[0] <= x.shape[1]
    x = x if wide else x.t()
    _, vecs = torch.linalg.eigh(x @ x.t())  # ascending eigenvalues
    u = vecs[:, -rank:]
    low = u @ (u.t() @ x)
    low = low if wide else low.t()
    return low.to(device=w.device, dtype=w.dtype)


def kc_rank(width, num_experts):
    return max(1, width // max(1, num_experts))


def _experts(state_dict, prefix, modalities):
    """Lists of (w1, b1, w2, b2) in x @ w layout per expert type."""
    groups = {}
    spec = []
    for m in modalities:
        p = f'{prefix}specialized_experts.{m}.'
        if p + 'w1' in state_dict:
            spec.extend(zip(*(state_dict[p + n].unbind(0)
                              for n in ('w1', 'b1', 'w2', 'b2'))))
    if spec:
        groups['specialized'] = spec
    p = f'{prefix}collab_experts.'
    if p + 'w1' in state_dict:
        groups['collaborative'] = list(
            zip(*(state_dict[p + n].unbind(0)
                  for n in ('w1', 'b1', 'w2', 'b2'))))
    p = f'{prefix}shared_expert.layers.'
    if p + '0.0.weight' in state_dict:
        groups['shared'] = [(state_dict[p + '0.0.weight'].t(),
                             state_dict[p + '0.0.bias'],
                             state_dict[p + '1.weight'].t(),
                             state_dict[p + '1.bias'])]
    return groups


def merge_layer(groups, method, width, full_rank=False, dtype=torch.float64,
                device=None):
    """Merged (w1, b1, w2, b2) in x @ w layout for one RMoE layer."""
    if method not in METHODS:
        raise ValueError(f'unknown merge method {method!r}; use {METHODS}')
    acc = None
    count = 0
    for etype, experts in groups.items():
        rank = kc_rank(width, len(experts))
        for w1, b1, w2, b2 in experts:
            if method == 'kc' and etype != 'shared' and not full_rank:
                w1 = truncate(w1, rank, dtype, device)
                w2 = truncate(w2, rank, dtype, device)
            if acc is None:
                acc = [t.clone() for t in (w1, b1, w2, b2)]
            else:
                for a, t in zip(acc, (w1, b1, w2, b2)):
                    a.add_(t)
            count += 1
    if acc is None:
        raise ValueError('RMoE layer without experts')
    if method == 'ka':
        acc = [a / count for a in acc]
    return acc


def merge_experts(state_dict, method, modalities=None, meta=None,
                  full_rank=False, dtype=torch.float64, device=None,
                  quiet=None):
    """Dense RingMoE state dict (``moe_mode='dense'``) from a sparse one.

    Routers are dropped. ``modalities`` (default: all in the checkpoint)
    chooses whose specialized experts are merged and whose patch embeddings
    are kept. A progress bar counts the merged blocks (on a terminal, not
    with ``quiet``; KC's SVDs take seconds per block of a 1B model).
    Returns ``(meta, state_dict)``.
    """
    if not is_sparse(state_dict):
        raise ValueError('merging needs a sparse RingMoE checkpoint '
                         "(moe_mode='sparse'); this one is already dense")
    meta = describe(state_dict, meta)
    if modalities:
        from .decompose import extract_modalities
        meta, state_dict = extract_modalities(state_dict, modalities, meta)
    modalities = list(meta['modalities'])
    from mmringmoe.visualization.progress import progress_counter
    out = OrderedDict()
    done = set()
    bar = progress_counter(
        len({k.split('.ffn.')[0] for k in state_dict if '.ffn.' in k}),
        desc=f'{method.upper()} merge', quiet=quiet, unit='block')
    for k, v in state_dict.items():
        if '.ffn.' not in k:
            out[k] = v
            continue
        block = k.split('.ffn.')[0]
        if block in done:
            continue
        done.add(block)
        prefix = f'{block}.ffn.'
        groups = _experts(state_dict, prefix, modalities)
        width = next(iter(groups.values()))[0][0].shape[0]
        w1, b1, w2, b2 = merge_layer(groups, method, width, full_rank, dtype,
                                     device)
        out[prefix + 'layers.0.0.weight'] = w1.t().contiguous()
        out[prefix + 'layers.0.0.bias'] = b1
        out[prefix + 'layers.1.weight'] = w2.t().contiguous()
        out[prefix + 'layers.1.bias'] = b2
        bar.update(1)
    bar.close()
    new_meta = describe(out, meta)
    new_meta['merge'] = dict(method=method, modalities=modalities,
                             full_rank=bool(full_rank),
                             kc_bias='sum' if method == 'kc' else None)
    return new_meta, out
