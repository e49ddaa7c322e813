"""Forward+backward time and memory of RingMoE parts against references measured in the same run.

(a) one RMoE layer (top-1 specialized + top-1 collaborative + shared expert)
    vs a dense FFN with the same active FLOPs per token (hidden width x 3);
    also timed: the layer's GEMMs alone (:class:`GemmFloorCase`: each expert's
    six products at the row count its router gives it, nothing else), whose
    ratio to the dense step is the floor of (a) on the machine (0.76-0.91
    in four runs on the 2-core CPU, where the GEMMs are most of both
    steps; a median of one run, so as noisy as the others);
(b) the whole backbone in dense mode vs mmpretrain's SwinTransformerV2 of the same size;
(c) the sparse backbone vs (b)'s dense RingMoE (same parameters per expert, 3x the FLOPs);
(d) the sparse backbone vs mmpretrain's SwinTransformerV2 whose FFN is 3x wider
    (``ffn_ratio=12``): the same active FLOPs per token, the physical reference of (c).
    It runs at ``--batch-d`` (8): the sparse layers hold 3x the FFN weights of the
    reference (4 + 4 + 1 experts of width 4C against one of width 12C), read twice
    and whose gradients are written once per step whatever the number of tokens.
    At 2 x 192 px a stage-3 expert of RingMoE-base sees 72 tokens and a stage-4
    one 18, and those weight bytes, not the FLOPs, set the time (measured on 2
    CPU cores: 1.18-1.22 at batch 2, 1.02 at batch 8, where a stage-3 expert
    sees 288 tokens; pretraining on a GPU sees thousands).

All cases of a group run interleaved rep by rep, the order reversed every
other rep (A B, B A, A B, ...), so drift in machine load hits them alike;
every ratio divides two medians of that one run. Each case is also timed
``torch.compile``d (default backend) where compilation works here; a
failure is caught and printed in one line.

Clock: on the CPU the ratios use the process CPU time (user + system,
``time.process_time``) of each forward+backward step by default: on a
machine shared with other jobs, wall time also counts the periods in which
the scheduler runs someone else, which hit whichever case happens to be
running. CPU time still counts everything the step itself does (page
faults and memory stalls included), and other jobs still slow it (shared
caches and memory bandwidth, OpenMP threads spinning while they wait):
take figures on a quiet machine. The wall-time medians and their ratio
are printed next to it; ``--clock wall`` makes wall time the headline.
CUDA always uses wall time (synchronised).

Memory is the size of the activations autograd saves for backward (eager
mode, device independent); on CUDA the peak allocated memory is printed too.
Ratios > 1 mean slower / larger. ``--device cuda`` runs under bf16 autocast.

    python tools/analysis_tools/benchmark_rmoe.py                      # CPU-sized defaults
    python tools/analysis_tools/benchmark_rmoe.py --skip bcd --no-compile
    python tools/analysis_tools/benchmark_rmoe.py --arch 1b --device cuda
"""
import argparse
import contextlib
import statistics
import time

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmpretrain.models import SwinTransformerV2

from mmringmoe.models import RingMoE
from mmringmoe.models.layers import RMoE, RoutingContext


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--width', type=int, default=448, help='token width of (a)')
    p.add_argument('--tokens', type=int, default=2 * 48 * 48, help='tokens of (a)')
    p.add_argument('--arch', default='base', help='backbone arch of (b), (c), (d)')
    p.add_argument('--img-size', type=int, default=192)
    p.add_argument('--batch', type=int, default=2, help='batch of (b) and (c)')
    p.add_argument('--batch-d', type=int, default=8,
                   help='batch of (d); 8 gives each stage-3 expert of RingMoE-base '
                        '288 tokens at 192 px (at 2: 72, see the module docstring)')
    p.add_argument('--reps', type=int, default=7, help='timed steps per case')
    p.add_argument('--warmup', type=int, default=2,
                   help='untimed steps per case before timing (compiles the compiled ones)')
    p.add_argument('--clock', choices=('auto', 'cpu', 'wall'), default='auto',
                   help="time the ratios use: process CPU time or wall time "
                        "(auto: cpu on the CPU, wall on CUDA)")
    p.add_argument('--device', default='cpu',
                   help="'cpu' or 'cuda[:i]' (bf16 autocast on CUDA)")
    p.add_argument('--skip', default='', help='cases to skip, e.g. "bc"')
    p.add_argument('--no-compile', action='store_true',
                   help='time eager mode only')
    p.add_argument('--compile-cases', default='abcd',
                   help='cases also timed torch.compiled (default all)')
    return p.parse_args(argv)


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
    """One fwd+bwd workload: ``fn()`` returns a scalar to backpropagate.

    ``error`` is set (and the case stops being timed) when a step raises,
    e.g. a ``torch.compile`` that does not work on this machine.
    """

    def __init__(self, name, fn, params, device, memory=True):
        self.name, self.fn, self.params, self.device = name, fn, list(params), device
        self.memory = memory
        self.times = []  # wall seconds per timed step
        self.cpu_times = []  # process CPU seconds per timed step
        self.error = None

    def _sync(self):
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()

    def _autocast(self):
        if self.device.startswith('cuda'):
            return torch.autocast('cuda', dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self):
        for p in self.params:
            p.grad = None
        with self._autocast():
            loss = self.fn()
        loss.backward()

    def guarded(self, timed):
        if self.error is not None:
            return
        try:
            self._sync()
            c0, t0 = time.process_time(), time.perf_counter()
            self.step()
            self._sync()
            if timed:
                self.times.append(time.perf_counter() - t0)
                self.cpu_times.append(time.process_time() - c0)
        except Exception as e:  # noqa: BLE001 -- reported, not hidden
            self.error = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'

    def summary(self):
        """(median wall s, saved-activation MB (eager only), CUDA peak MB,
        median CPU s, (min, max) wall s)."""
        if self.error is not None or not self.times:
            return None
        saved = float('nan')
        if self.memory:
            with SavedBytes(self.params) as counter, self._autocast():
                self.fn()
            saved = counter.total / 2**20
        peak = float('nan')
        if self.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
            self.step()
            peak = torch.cuda.max_memory_allocated() / 2**20
        return (statistics.median(self.times), saved, peak,
                statistics.median(self.cpu_times), (min(self.times), max(self.times)))


def measure(cases, reps, warmup=2):
    """Warm every case up (``warmup`` steps: compiles and recompiles
    settle), then time them interleaved rep by rep, the order reversed
    every other rep. Returns {name: summary or None}."""
    for c in cases:
        t0 = time.perf_counter()
        for _ in range(max(warmup, 1)):
            c.guarded(timed=False)
        print(f'  warm-up {c.name}: {time.perf_counter() - t0:.1f} s'
              + (f'  FAILED {c.error}' if c.error else ''), flush=True)
    for i in range(reps):
        for c in (cases if i % 2 == 0 else cases[::-1]):
            c.guarded(timed=True)
    return {c.name: c.summary() for c in cases}


def compiled(module):
    """``torch.compile(module)``; None (with the reason printed) where
    compile itself is not available."""
    try:
        return torch.compile(module)
    except Exception as e:  # noqa: BLE001
        print(f'  torch.compile unavailable: {type(e).__name__}: {e}')
        return None


def report(title, results, ours, ref, clock='wall'):
    """Print both cases and their ratios; returns the ``clock`` time ratio."""
    print(title)
    for name in (ours, ref):
        r = results.get(name)
        if r is None:
            print(f'  {name:<22} not measured')
        else:
            t, m, p, cpu, (lo, hi) = r
            print(f'  {name:<22} cpu {cpu * 1e3:8.1f} ms  wall {t * 1e3:8.1f} ms '
                  f'(min {lo * 1e3:.0f}, max {hi * 1e3:.0f})  saved {m:8.1f} MB  '
                  f'cuda-peak {p:8.1f} MB')
    a, b = results.get(ours), results.get(ref)
    if a is None or b is None:
        print('  ratio: n/a')
        return None
    cpu_ratio, wall_ratio = a[3] / b[3], a[0] / b[0]
    time_ratio = cpu_ratio if clock == 'cpu' else wall_ratio
    mem = f'  memory {a[1] / b[1]:.3f}' if a[1] == a[1] and b[1] == b[1] else ''
    print(f'  ratio time {time_ratio:.3f} ({clock}; cpu {cpu_ratio:.3f}, '
          f'wall {wall_ratio:.3f}){mem}')
    return time_ratio


class GemmFloorCase(Case):
    """The matrix products of one RMoE forward+backward step and nothing
    else: for every expert (shared, collaborative, specialized) with the row
    count its router gives it on ``x``, the two forward GEMMs (``addmm``
    with the bias) and the four backward ones (the GELU-output, first-layer
    weight, second-layer weight and input gradients), with the layer's own
    weights in the layouts the layer uses, into outputs allocated once. No
    routing, gather, GELU, gate, scatter, allocation or autograd.

    Its time over the dense reference's step is the lowest ratio that an
    RMoE layer computing these GEMMs can reach on this machine: the FLOPs
    are the reference's (3 experts of width 4C per token against one FFN of
    width 12C), so an RMoE layer is only faster than the dense FFN by the
    time the reference spends outside its GEMMs (GELU and bias passes,
    first touches of its large hidden tensors) or by GEMMs that run
    faster than the reference's.
    """

    def __init__(self, name, rmoe, x):
        super().__init__(name, None, [], str(x.device), memory=False)
        flat = x.detach().reshape(-1, x.shape[-1])
        fc1, fc2 = rmoe.shared_expert.layers[0][0], rmoe.shared_expert.layers[1]
        experts = [(flat.shape[0], fc1.weight.t(), fc1.bias, fc2.weight.t(), fc2.bias)]
        with torch.no_grad():
            for router, group in ((rmoe.collab_router, rmoe.collab_experts),
                                  *((rmoe.specialized_routers[m],
                                     rmoe.specialized_experts[m])
                                    for m in rmoe.modalities[:1])):
                idx = router(flat)[2].reshape(-1)
                counts = torch.bincount(idx, minlength=group.num_experts).tolist()
                experts += [(n, group.w1[e], group.b1[e], group.w2[e], group.b2[e])
                            for e, n in enumerate(counts) if n]
        self.counts = [e[0] for e in experts]
        self.work = []
        for n, w1, b1, w2, b2 in experts:
            w1, b1, w2, b2 = (t.detach() for t in (w1, b1, w2, b2))
            hidden = w1.shape[1]
            self.work.append(dict(
                w=(w1, b1, w2, b2), x=flat[:n], gy=torch.randn_like(flat[:n]),
                h=flat.new_empty(n, hidden), y=torch.empty_like(flat[:n]),
                ga=flat.new_empty(n, hidden), gx=torch.empty_like(flat[:n]),
                gw1=torch.empty_like(w1), gw2=torch.empty_like(w2)))

    def step(self):
        for b in self.work:
            w1, b1, w2, b2 = b['w']
            torch.addmm(b1, b['x'], w1, out=b['h'])
            torch.addmm(b2, b['h'], w2, out=b['y'])
            torch.mm(b['gy'], w2.t(), out=b['ga'])
            torch.mm(b['h'].t(), b['gy'], out=b['gw2'])
            torch.mm(b['x'].t(), b['ga'], out=b['gw1'])
            torch.mm(b['ga'], w1.t(), out=b['gx'])


def _cases(name, module, fn_of, params, args, compile_it):
    """The eager case of ``module`` and, if asked, its compiled twin."""
    out = [Case(name, fn_of(module), params, args.device)]
    if compile_it:
        cm = compiled(module)
        if cm is not None:
            out.append(Case(name + ' compiled', fn_of(cm), params, args.device,
                            memory=False))
    return out


def bench_layer(args):
    c, h = args.width, 4 * args.width
    ctx = RoutingContext()
    ctx.segments = [('opt', 0, 1)]
    rmoe = RMoE(c, h, ('opt', ), ctx, top_k=1).to(args.device).eval()  # eval: no router noise
    dense = FFN(embed_dims=c, feedforward_channels=3 * h, num_fcs=2, ffn_drop=0.,
                act_cfg=dict(type='GELU'), add_identity=False).to(args.device)
    x = torch.randn(1, args.tokens, c, device=args.device, requires_grad=True)
    comp = not args.no_compile and 'a' in args.compile_cases

    def rmoe_fn(m):
        return lambda: m(x).float().sum() + rmoe.last_aux_loss

    def dense_fn(m):
        return lambda: m(x).float().sum()

    floor = GemmFloorCase('rmoe-gemms-only', rmoe, x)
    cases = _cases('rmoe', rmoe, rmoe_fn, [x, *rmoe.parameters()], args, comp) + \
        _cases('dense-ffn-x3', dense, dense_fn, [x, *dense.parameters()], args, comp) + \
        [floor]
    res = measure(cases, args.reps, args.warmup)
    title = f'(a) RMoE layer vs dense FFN x3 hidden: {args.tokens} tokens, width {c}'
    ratios = {'a': report(title, res, 'rmoe', 'dense-ffn-x3', args.clock)}
    ratios['a floor'] = report(
        f'(a) floor: the RMoE layer\'s GEMMs alone (expert rows {floor.counts}; '
        f'no routing, GELU or autograd) vs the same dense step: the ratio an '
        f'RMoE layer computing these GEMMs can approach here (medians of this '
        f'run; compare the min/max spread, wide at small sizes or under load)',
        res, 'rmoe-gemms-only', 'dense-ffn-x3', args.clock)
    if comp:
        ratios['a compiled'] = report('(a) compiled', res, 'rmoe compiled',
                                      'dense-ffn-x3 compiled', args.clock)
    return ratios


def _backbone_fn(model):
    def fn_of(m, x):
        def fn():
            outs = m(x)
            loss = sum(o.float().mean() for o in outs)
            aux = getattr(model, 'aux_loss', None)
            return loss + aux() if aux else loss
        return fn
    return fn_of


def bench_backbones(args, wanted, batch):
    """The cases ``wanted`` of (b), (c), (d) at ``batch``: every backbone
    they need built once, all timed interleaved."""
    arch = RingMoE._resolve_arch(args.arch)
    upstream_arch = {k: list(arch[k]) if k != 'embed_dims' else arch[k]
                     for k in ('embed_dims', 'depths', 'num_heads')}
    upstream_arch['extra_norm_every_n_blocks'] = arch['extra_norm_every_n_blocks']
    common = dict(window_size=arch['window_size'], pad_small_map=True,
                  out_indices=(0, 1, 2, 3), drop_path_rate=0.)
    x = torch.randn(batch, 3, args.img_size, args.img_size, device=args.device)
    wanted = set(wanted)
    models = {}
    if wanted & {'b', 'c'}:
        models['dense-ringmoe'] = RingMoE(args.arch, modalities=('opt', ),
                                          moe_mode='dense', **common)
    if 'b' in wanted:
        models['swinv2'] = SwinTransformerV2(arch=upstream_arch, in_channels=3, **common)
    if wanted & {'c', 'd'}:
        # eval: no router noise (the dense models have none either)
        models['sparse-ringmoe'] = RingMoE(args.arch, modalities=('opt', ), **common).eval()
    if 'd' in wanted:
        models['swinv2-ffn-x3'] = SwinTransformerV2(
            arch=upstream_arch, in_channels=3,
            stage_cfgs=dict(block_cfgs=dict(ffn_ratio=12.)), **common)
    cases = []
    for name, model in models.items():
        model.to(args.device)
        fn_of = _backbone_fn(model)
        comp = not args.no_compile and any(
            k in args.compile_cases for k in wanted
            if name in _PAIRS[k])
        cases += _cases(name, model, lambda m, f=fn_of: f(m, x), model.parameters(),
                        args, comp)
    res = measure(cases, args.reps, args.warmup)
    titles = {
        'b': f'(b) dense RingMoE-{args.arch} vs mmpretrain SwinTransformerV2, '
             f'{batch}x{args.img_size}px',
        'c': f'(c) sparse RingMoE-{args.arch} (1 modality) vs dense RingMoE (b)',
        'd': f'(d) sparse RingMoE-{args.arch} vs SwinTransformerV2 with a 3x wider FFN '
             f'(same active FLOPs), {batch}x{args.img_size}px',
    }
    ratios = {}
    for k in sorted(wanted):
        ours, ref = _PAIRS[k]
        ratios[k] = report(titles[k], res, ours, ref, args.clock)
        if f'{ours} compiled' in res or f'{ref} compiled' in res:
            ratios[k + ' compiled'] = report(f'({k}) compiled', res, f'{ours} compiled',
                                             f'{ref} compiled', args.clock)
    return ratios


_PAIRS = {'b': ('dense-ringmoe', 'swinv2'),
          'c': ('sparse-ringmoe', 'dense-ringmoe'),
          'd': ('sparse-ringmoe', 'swinv2-ffn-x3')}


def main(argv=None):
    args = parse_args(argv)
    if args.clock == 'auto':
        args.clock = 'wall' if args.device.startswith('cuda') else 'cpu'
    elif args.clock == 'cpu' and args.device.startswith('cuda'):
        raise SystemExit('error: --clock cpu measures host CPU time; use wall on CUDA')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit(f'error: --device {args.device}: torch sees no CUDA '
                         'device here')
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, device {args.device}'
          f'{" (bf16 autocast)" if args.device.startswith("cuda") else ""}, '
          f'threads {torch.get_num_threads()}, reps {args.reps}, clock {args.clock}',
          flush=True)
    ratios = {}
    if 'a' not in args.skip:
        ratios.update(bench_layer(args))
    groups = {}  # batch -> cases: (d) may run at another batch than (b), (c)
    for k in 'bcd':
        if k not in args.skip:
            groups.setdefault(args.batch_d if k == 'd' else args.batch, []).append(k)
    for batch, wanted in groups.items():
        ratios.update(bench_backbones(args, wanted, batch))
    return ratios


if __name__ == '__main__':
    main()
