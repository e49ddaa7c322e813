"""Sharded FSDP checkpoints (torch.distributed.checkpoint): save on 2 ranks,
resume on 1 and on 2, and training continues exactly (issue 15).

Real FSDP (``FullyShardedDataParallel``, ``use_orig_params=True``, the
pretraining config's wrap policy) on CPU with gloo, on a tiny RingMoE with two
modalities and a regression head, AdamW. Run A trains 4 steps on 2 ranks and
saves through :class:`ShardedMetaInitFSDPStrategy` after step 2 (saving does
not touch the training state, so A is the uninterrupted reference). Runs B
(1 rank) and C (2 ranks) resume from that directory and train steps 3-4.

Nothing differs between the runs but the sharding: no drop path, and the
router noise (Eq. 14) is seeded per step and micro-batch. Every step uses
the same global batch of 2 micro-batches: on 2 ranks one per
rank (FSDP averages the gradients: g0/2 + g1/2), on 1 rank both in turn, each
backward of loss/2 (gradients accumulate to g0/2 + g1/2; scaling by 1/2 is
exact in floating point). The losses and the final weights must therefore be
bitwise equal to A's, which only holds if parameters AND AdamW moments and
step counts were restored across the resharding.

The optimizer is mmengine's ``AmpOptimWrapper`` as the FSDP strategy builds
it (``use_fsdp=True``: torch's ``ShardedGradScaler``, which all-reduces its
overflow flag), scaling on the CPU (``device='cpu'``; mmengine's GPU assert is
patched). Its scale is a power of two, so scaling and unscaling are exact and
the losses stay comparable; the scaler's own state (scale 2**10 growing every
3 steps: scale and growth tracker differ at every step) must continue too.
"""
import os
import os.path as osp
import socket

import pytest
import torch

MODS = ('opt', 'ms')
CHANNELS = {'opt': 3, 'ms': 4}


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tiny_model():
    import torch.nn as nn

    from mmringmoe.models import RingMoE

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = RingMoE(
                arch=dict(base='tiny', embed_dims=16, depths=(1, 1), num_heads=(1, 2),
                          window_size=4, num_specialized_experts=2,
                          num_collab_experts=2),
                modalities=MODS, out_indices=(1, ), drop_path_rate=0.)
            self.head = nn.Linear(32, 1)

        def forward(self, inputs, target):
            feats = self.backbone(inputs)
            pred = sum(self.head(feats[m][0].mean((2, 3))) for m in inputs)
            return ((pred - target) ** 2).mean() + 0.01 * self.backbone.aux_loss()

    torch.manual_seed(0)
    return Regressor()


def _micro_batch(step, index):
    g = torch.Generator().manual_seed(1000 * step + index)
    inputs = {m: torch.randn(1, c, 32, 32, generator=g) for m, c in CHANNELS.items()}
    return inputs, torch.randn(1, 1, generator=g)


def _worker(rank, world, port, workdir, mode):
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    import torch.distributed as dist
    from mmengine.optim import AmpOptimWrapper
    from torch.distributed.fsdp import FullStateDictConfig
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import StateDictType

    from mmringmoe.engine.dist_checkpoint import ShardedMetaInitFSDPStrategy
    from mmringmoe.engine.fsdp import prepare_for_fsdp, ringmoe_block_wrap_policy

    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        strategy = ShardedMetaInitFSDPStrategy(work_dir=osp.join(workdir, 'work'))
        model = _tiny_model()
        prepare_for_fsdp(model)
        fsdp = FSDP(model, auto_wrap_policy=ringmoe_block_wrap_policy,
                    use_orig_params=True, device_id=torch.device('cpu'))
        amp.is_cuda_available = lambda: True  # mmengine's check; CPU scaler
        optim = AmpOptimWrapper(
            optimizer=torch.optim.AdamW(fsdp.parameters(), lr=1e-3,
                                        weight_decay=0.05, foreach=False),
            use_fsdp=True, loss_scale=dict(device='cpu', init_scale=2.**10,
                                           growth_interval=3))
        strategy.model, strategy.optim_wrapper = fsdp, optim
        ckpt = osp.join(workdir, 'iter_2.pth')

        def full_state(m):
            with FSDP.state_dict_type(m, StateDictType.FULL_STATE_DICT,
                                      FullStateDictConfig(rank0_only=True,
                                                          offload_to_cpu=True)):
                return m.state_dict()

        first, at_2, scaler_at_2 = 1, None, None
        if mode != 'reference':
            seen = {}
            meta = strategy.resume(ckpt, callback=seen.update)['meta']
            assert meta['iter'] == 2 and meta['sharded']['world_size'] == 2
            # hooks see this rank's shards under the unwrapped names
            assert 'backbone.patch_embed.opt.projection.weight' in seen['state_dict']
            first = 3
            at_2 = full_state(fsdp)
            scaler_at_2 = optim.loss_scaler.state_dict()
        losses = []
        micro = 2 // world
        for step in range(first, 5):
            optim.zero_grad()
            total = torch.zeros(())
            for i in range(micro):
                inputs, target = _micro_batch(step, rank * micro + i)
                # router noise (Eq. 14) drawn per micro-batch, alike in every run
                torch.manual_seed(100 * step + rank * micro + i)
                loss = fsdp(inputs, target)
                optim.backward(loss / micro)  # scaled by the loss scaler
                total += loss.detach()
            dist.all_reduce(total)
            losses.append(float(total / 2))
            optim.step()
            if mode == 'reference' and step == 2:
                strategy.save_checkpoint(ckpt, extra_ckpt={'meta': {'iter': 2}})
                at_2 = full_state(fsdp)
                scaler_at_2 = optim.loss_scaler.state_dict()
        if rank == 0:
            torch.save({'losses': losses, 'state_dict': full_state(fsdp),
                        'at_2': at_2, 'scaler_at_2': scaler_at_2,
                        'scaler': optim.loss_scaler.state_dict()},
                       osp.join(workdir, f'{mode}.pth'))
        else:
            full_state(fsdp)
    finally:
        dist.destroy_process_group()


def _launch(world, workdir, mode):
    import torch.multiprocessing as mp
    mp.start_processes(_worker, args=(world, _free_port(), str(workdir), mode),
                       nprocs=world, start_method='spawn')
    return torch.load(osp.join(workdir, f'{mode}.pth'), weights_only=True)


def test_fsdp_config_uses_the_sharded_strategy():
    from mmengine.config import Config

    from mmringmoe.engine.dist_checkpoint import ShardedMetaInitFSDPStrategy
    from mmringmoe.engine.fsdp import MetaInitFSDPStrategy
    from mmringmoe.registry import STRATEGIES
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(
        root, 'configs', 'pretrain',
        'simmim_ringmoe-1b-fsdp_512xb8-100e_ringmoss-192px.py'))
    cls = STRATEGIES.get(cfg.strategy.type.split('.')[-1])
    assert cls is ShardedMetaInitFSDPStrategy
    assert issubclass(cls, MetaInitFSDPStrategy)


def test_not_a_sharded_checkpoint_is_refused_in_one_line(tmp_path):
    from mmringmoe.engine.dist_checkpoint import load_sharded
    with pytest.raises(FileNotFoundError, match='found a directory without'):
        load_sharded(str(tmp_path), torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_sharded_checkpoint_resumes_on_other_world_sizes_exactly(tmp_path):
    ref = _launch(2, tmp_path, 'reference')
    ckpt = tmp_path / 'iter_2.pth'
    names = sorted(os.listdir(ckpt))
    # each rank wrote its own shard; no full-model file
    assert names == ['.metadata', '__0_0.distcp', '__1_0.distcp', 'extra.pth']
    assert not (tmp_path / 'iter_2.pth.partial').exists()
    assert len(ref['losses']) == 4 and ref['losses'][0] != ref['losses'][3]
    # 2 good steps of 3 at 2**10, then one more growth step at 2**11
    assert (ref['scaler_at_2']['scale'], ref['scaler_at_2']['_growth_tracker']) \
        == (2.**10, 2)
    assert (ref['scaler']['scale'], ref['scaler']['_growth_tracker']) == \
        (2.**11, 1)

    for world in (1, 2):
        got = _launch(world, tmp_path, f'resume{world}')
        # the weights as saved after step 2
        for k, v in ref['at_2'].items():
            assert torch.equal(got['at_2'][k], v), (world, k)
        assert got['losses'] == ref['losses'][2:], (world, got['losses'], ref['losses'])
        # the AMP loss scaler continues where it stood
        assert got['scaler_at_2'] == ref['scaler_at_2'], world
        assert got['scaler'] == ref['scaler'], (world, got['scaler'])
        assert got['state_dict'].keys() == ref['state_dict'].keys()
        for k, v in ref['state_dict'].items():
            assert torch.equal(got['state_dict'][k], v), (world, k)

    # the converter: the sharded directory -> single-file backbone after step 2
    from pruning_common import converter
    convert = converter('dcp_to_backbone').main
    out = tmp_path / 'backbone.pth'
    convert([str(ckpt), str(out)])
    single = torch.load(out, weights_only=True)
    assert set(single) == {'meta', 'state_dict'}
    sd = single['state_dict']
    assert 'patch_embed.opt.projection.weight' in sd and not any(
        k.startswith(('backbone.', 'head.')) for k in sd)
    # same tensors as the 1-rank run right after loading: rebuild and load
    from mmringmoe.models.pruning.checkpoint import backbone_kwargs
    from mmringmoe.models import RingMoE
    rebuilt = RingMoE(**backbone_kwargs(single['meta']))
    rebuilt.load_state_dict(sd, strict=True)
    before = os.listdir(ckpt)
    with pytest.raises(FileExistsError, match='exists'):
        convert([str(ckpt), str(out)])  # never overwrites
    assert os.listdir(ckpt) == before
