"""tools/analysis_tools/benchmark_rmoe.py case (a) and its GEMM floor
(issue 15): :class:`GemmFloorCase` must run the GEMMs of the RMoE layer's
own step, i.e. every expert with the row count the layer dispatches to it
(read back from the layer's routing statistics) and, in all, the FLOPs of
the dense FFN x3 reference; its products are those of the layer's weights.
Timings are printed, never asserted."""
import importlib.util
import os.path as osp

import torch

from mmringmoe.models.layers import RMoE, RoutingContext

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_rmoe.py')
    spec = importlib.util.spec_from_file_location('benchmark_rmoe', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_floor_runs_the_layers_own_gemms():
    bench = _tool()
    torch.manual_seed(0)
    c, tokens = 16, 96
    ctx = RoutingContext()
    ctx.segments = [('opt', 0, 1)]
    rmoe = RMoE(c, 4 * c, ('opt', ), ctx, top_k=1).eval()
    x = torch.randn(1, tokens, c)
    rmoe.record_stats = True
    rmoe(x)
    dispatched = [tokens] + [
        int(n) for kind in ('collaborative', 'specialized')
        for n in rmoe.stats[kind]['opt'] if n]

    floor = bench.GemmFloorCase('floor', rmoe, x)
    assert floor.counts == dispatched
    # 3 experts of width 4C per token: the FLOPs of one FFN of width 12C
    assert sum(floor.counts) == 3 * tokens
    floor.step()
    # the shared expert's first GEMM: x @ fc1.weight.T + fc1.bias
    fc1 = rmoe.shared_expert.layers[0][0]
    shared = floor.work[0]
    torch.testing.assert_close(shared['h'], x[0] @ fc1.weight.t() + fc1.bias)
    # second-layer weight gradient of the shared expert: h.T @ gy
    torch.testing.assert_close(shared['gw2'], shared['h'].t() @ shared['gy'])
    # an expert's weights are its own (collaborative expert 0 or the next)
    first = next(e for e, n in enumerate(rmoe.stats['collaborative']['opt']) if n)
    torch.testing.assert_close(floor.work[1]['w'][0],
                               rmoe.collab_experts.w1[first].detach())


def test_case_a_reports_the_floor(capsys):
    ratios = _tool().main(['--width', '16', '--tokens', '64', '--skip', 'bcd',
                           '--no-compile', '--reps', '1', '--warmup', '1'])
    assert set(ratios) == {'a', 'a floor'}
    assert all(r > 0 for r in ratios.values())
    out = capsys.readouterr().out
    assert '(a) floor' in out and 'rmoe-gemms-only' in out


def test_cuda_without_a_device_is_one_line():
    import pytest
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is visible')
    with pytest.raises(SystemExit) as e:
        _tool().main(['--device', 'cuda', '--skip', 'bcd'])
    assert str(e.value.code).startswith('error: --device cuda: torch sees no')
