"""Forward+backward time and memory of RingMoE parts against references measured in the same run.

(a) one RMoE layer (top-1 specialized + top-1 collaborative + shared expert)
    vs a dense FFN with the same active FLOPs per token (hidden width x 3);
(b) the whole backbone in dense mode vs mmpretrain's SwinTransformerV2 of the same size;
(c) the sparse backbone vs (b).

Memory is the size of the activations autograd saves for backward (device independent);
on CUDA the peak allocated memory is printed too. Ratios > 1 mean slower / larger.

    python tools/analysis_tools/benchmark_rmoe.py                      # CPU-sized defaults
    python tools/analysis_tools/benchmark_rmoe.py --arch 1b --device cuda
"""
import argparse
import statistics
import time

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmpretrain.models import SwinTransformerV2

from mmringmoe.models import RingMoE
from mmringmoe.models.layers import RMoE, RoutingContext


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--width', type=int, default=448, help='token width of (a)')
    p.add_argument('--tokens', type=int, default=2 * 48 * 48, help='tokens of (a)')
    p.add_argument('--arch', default='base', help='backbone arch of (b) and (c)')
    p.add_argument('--img-size', type=int, default=192)
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--reps', type=int, default=5)
    p.add_argument('--device', default='cpu')
    p.add_argument('--skip', default='', help='parts to skip, e.g. "bc"')
    return p.parse_args()


class SavedBytes:
    """Bytes of the storages autograd keeps for backward during a forward.

    Counted per storage, so a tensor saved by several ops (or views of one
    buffer) counts once, as it does in memory; parameters are left out since
    they are resident whether or not autograd saves them.
    """

    def __init__(self, params=()):
        self.storages = {}
        self.skip = {p.untyped_storage().data_ptr() for p in params}

    @property
    def total(self):
        return sum(self.storages.values())

    def __enter__(self):
        def pack(t):
            s = t.untyped_storage()
            if s.data_ptr() not in self.skip:
                self.storages[s.data_ptr()] = s.nbytes()
            return t
        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


class Case:
    """One fwd+bwd workload: ``fn()`` returns a scalar to backpropagate."""

    def __init__(self, fn, params, device):
        self.fn, self.params, self.device = fn, list(params), device
        self.times = []

    def _sync(self):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()

    def step(self):
        for p in self.params:
            p.grad = None
        self.fn().backward()

    def timed_step(self):
        self._sync()
        t0 = time.perf_counter()
        self.step()
        self._sync()
        self.times.append(time.perf_counter() - t0)

    def summary(self):
        """Median seconds, saved-activation MB, CUDA peak MB."""
        with SavedBytes(self.params) as saved:
            self.fn()
        peak = float('nan')
        if self.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
            self.step()
            peak = torch.cuda.max_memory_allocated() / 2**20
        return statistics.median(self.times), saved.total / 2**20, peak


def measure_pair(ours, ref, reps):
    """Alternate the two cases rep by rep, so drift in machine load hits both alike."""
    ours.step()  # warm-up
    ref.step()
    for _ in range(reps):
        ours.timed_step()
        ref.timed_step()
    return ours.summary(), ref.summary()


def report(name, ours, ref):
    (t1, m1, p1), (t2, m2, p2) = ours, ref
    print(f'{name}\n  ours {t1 * 1e3:9.1f} ms  saved {m1:8.1f} MB  cuda-peak {p1:8.1f} MB'
          f'\n  ref  {t2 * 1e3:9.1f} ms  saved {m2:8.1f} MB  cuda-peak {p2:8.1f} MB'
          f'\n  ratio time {t1 / t2:.3f}  memory {m1 / m2:.3f}')
    return t1 / t2


def bench_layer(args):
    c, h = args.width, 4 * args.width
    ctx = RoutingContext()
    ctx.segments = [('opt', 0, 1)]
    rmoe = RMoE(c, h, ('opt', ), ctx, top_k=1).to(args.device).eval()  # eval: no router noise
    dense = FFN(embed_dims=c, feedforward_channels=3 * h, num_fcs=2, ffn_drop=0.,
                act_cfg=dict(type='GELU'), add_identity=False).to(args.device)
    x = torch.randn(1, args.tokens, c, device=args.device, requires_grad=True)
    ours = Case(lambda: rmoe(x).sum() + rmoe.last_aux_loss, [x, *rmoe.parameters()],
                args.device)
    ref = Case(lambda: dense(x).sum(), [x, *dense.parameters()], args.device)
    return report(f'(a) RMoE layer vs dense FFN x3 hidden: {args.tokens} tokens, width {c}',
                  *measure_pair(ours, ref, args.reps))


def _backbone_fn(model, x, **kw):
    def fn():
        outs = model(x, **kw)
        loss = sum(o.float().mean() for o in outs)
        aux = getattr(model, 'aux_loss', None)
        return loss + aux() if aux else loss
    return fn


def bench_backbones(args, skip):
    arch = RingMoE._resolve_arch(args.arch)
    upstream_arch = {k: list(arch[k]) if k != 'embed_dims' else arch[k]
                     for k in ('embed_dims', 'depths', 'num_heads')}
    upstream_arch['extra_norm_every_n_blocks'] = arch['extra_norm_every_n_blocks']
    common = dict(window_size=arch['window_size'], pad_small_map=True,
                  out_indices=(0, 1, 2, 3), drop_path_rate=0.)
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=args.device)
    dense = RingMoE(args.arch, modalities=('opt', ), moe_mode='dense', **common).to(args.device)
    dense_case = Case(_backbone_fn(dense, x), dense.parameters(), args.device)
    ratios = {}
    if 'b' not in skip:
        upstream = SwinTransformerV2(arch=upstream_arch, in_channels=3, **common).to(args.device)
        up_case = Case(_backbone_fn(upstream, x), upstream.parameters(), args.device)
        ratios['b'] = report(f'(b) dense RingMoE-{args.arch} vs mmpretrain SwinTransformerV2, '
                             f'{args.batch}x{args.img_size}px',
                             *measure_pair(dense_case, up_case, args.reps))
        del upstream, up_case
    if 'c' not in skip:
        sparse = RingMoE(args.arch, modalities=('opt', ), **common).to(args.device).eval()
        sparse_case = Case(_backbone_fn(sparse, x), sparse.parameters(), args.device)
        dense_case.times = []
        ratios['c'] = report(f'(c) sparse RingMoE-{args.arch} (1 modality) vs dense (b)',
                             *measure_pair(sparse_case, dense_case, args.reps))
    return ratios


def main():
    args = parse_args()
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}')
    if 'a' not in args.skip:
        bench_layer(args)
    if not {'b', 'c'} <= set(args.skip):
        bench_backbones(args, args.skip)


if __name__ == '__main__':
    main()
