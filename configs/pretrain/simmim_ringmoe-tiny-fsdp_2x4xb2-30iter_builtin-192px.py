# The 14.7B config's training path (mmengine FlexibleRunner, FSDP with
# meta-device init, sharded torch.distributed.checkpoint directories, resume
# on any number of processes) on the built-in data, small enough for a CPU:
# RingMoE-tiny, 2 gloo processes, 30 iterations, a sharded checkpoint every 10.
#   torchrun --nproc_per_node 2 tools/train.py THIS --launcher pytorch
#   torchrun --nproc_per_node 1 tools/train.py THIS --launcher pytorch --resume
#   python tools/model_converters/dcp_to_backbone.py work_dirs/<this>/iter_30.pth tiny.pth
# Each process takes 4 modalities x 2 samples per iteration (global batch 16).
_base_ = ['./simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='mmringmoe.ShardedMetaInitFSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy='ringmoe_block_wrap_policy',
        use_orig_params=True,
        sharding_strategy='FULL_SHARD'))  # float32 on CPU: no mixed precision
model_wrapper_cfg = None
optim_wrapper = dict(type='OptimWrapper')
# the reconstruction pictures need the whole model on one process
custom_hooks = []
