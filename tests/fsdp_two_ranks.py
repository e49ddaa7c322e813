"""Run by tests/test_fsdp_init.py under ``torch.distributed.run`` with 2 CPU
(gloo) processes: rank 0's batch lacks a modality that rank 1's has. Meta
construction, FSDP units per expert group and block, materialisation by
``materialize_module``; one forward/backward must complete on both ranks and
give the gradients of a plain model on both batches (FSDP averages)."""
import datetime
import os
import sys
from functools import partial

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODS = ('opt', 'ms', 'sar_l2')


def batch(rank):
    g = torch.Generator().manual_seed(10 + rank)
    x = {'opt': torch.randn(2, 3, 32, 32, generator=g)}
    if rank == 1:
        x['ms'] = torch.randn(1, 4, 32, 32, generator=g)
    return x


def loss_of(model, out):
    return sum(f.pow(2).mean() for v in out.values() for f in v) + \
        0.001 * model.aux_loss()


def main():
    dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=90))
    rank = dist.get_rank()
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import lambda_auto_wrap_policy

    import mmringmoe.models  # noqa: F401
    from mmringmoe.engine.fsdp import (materialize_module, params_on_meta,
                                       prepare_for_fsdp,
                                       ringmoe_block_wrap_policy)
    from mmringmoe.models import RingMoE
    torch.manual_seed(0)  # same initialisation on both ranks
    with params_on_meta():
        model = RingMoE('tiny', modalities=MODS, drop_path_rate=0.).eval()
    if os.environ.get('RINGMOE_FSDP_FIX', '1') == '1':
        prepare_for_fsdp(model)
    dev = torch.device('cpu')
    fsdp = FSDP(model, device_id=dev, use_orig_params=True,
                auto_wrap_policy=partial(
                    lambda_auto_wrap_policy,
                    lambda_fn=lambda m: ringmoe_block_wrap_policy(m, False, 0)),
                param_init_fn=lambda m: materialize_module(m, dev))
    with FSDP.summon_full_params(fsdp):
        full = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = fsdp(batch(rank))
    loss_of(model, out).backward()
    with FSDP.summon_full_params(fsdp, with_grads=True):
        grads = {n.replace('_fsdp_wrapped_module.', ''): p.grad.clone()
                 for n, p in fsdp.named_parameters() if p.grad is not None}
    if rank == 0:
        ref = RingMoE('tiny', modalities=MODS, drop_path_rate=0.).eval()
        ref.load_state_dict(full, strict=True)
        total = sum(loss_of(ref, ref(batch(r))) for r in (0, 1)) / 2
        total.backward()
        bad = [n for n, p in ref.named_parameters() if p.grad is not None
               and not torch.allclose(grads[n], p.grad, rtol=1e-4, atol=1e-7)]
        n_ref = sum(p.grad is not None for p in ref.parameters())
        print(f'compared {n_ref} gradients, {len(bad)} differ {bad[:3]}',
              flush=True)
        assert not bad
    print(f'rank {rank} step done', flush=True)
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
