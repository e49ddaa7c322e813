# The 14.7B pretraining with mmengine's FlexibleRunner and FSDP (full
# sharding of parameters, gradients and AdamW states over all ranks).
# Parameters are created on the meta device and each Swin V2 block (attention +
# RMoE experts, the FSDP unit) is materialised and initialised directly on its
# GPU before sharding, so no process ever holds the whole model
# (mmringmoe.MetaInitFSDPStrategy). Checkpoints are sharded
# torch.distributed.checkpoint directories, every rank writing its own shard of
# the weights and AdamW state; a run resumes on any number of ranks
# (mmringmoe.ShardedMetaInitFSDPStrategy; tools/model_converters/dcp_to_backbone.py
# makes the single-file backbone). Layout: README "Pretraining".
#   torchrun --nnodes 64 --nproc_per_node 8 ... tools/train.py THIS --launcher pytorch
_base_ = ['./simmim_ringmoe-1b_512xb8-100e_ringmoss-192px.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='mmringmoe.ShardedMetaInitFSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy='ringmoe_block_wrap_policy',
        use_orig_params=True,
        sharding_strategy='FULL_SHARD',
        mixed_precision=dict(
            param_dtype='bfloat16', reduce_dtype='float32',
            buffer_dtype='float32')),
    # every block recomputes its activations in the backward pass
    activation_checkpointing=dict(check_fn='ringmoe_block_wrap_check'),
    # only for load_from of a single-file (converted / DDP) checkpoint;
    # the run's own checkpoints are sharded whatever this says
    state_dict_cfg='full')
model = dict(backbone=dict(with_cp=False))
optim_wrapper = dict(type='OptimWrapper')
model_wrapper_cfg = None
