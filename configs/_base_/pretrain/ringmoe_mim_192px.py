# RingMoE multi-modal SimMIM pretraining (paper Sec. 3.1, 3.3, Appendix B.3):
# 192 px, mask patch 32, ratio 0.6, model patch 4, learned mask token, one linear
# decoder per modality, pixel targets for opt/ms/sar_l2 and the polarimetric
# power for sar_l1 (Eq. 5), Eq. 6 squared error over masked valid (not nodata)
# pixels, per modality, summed over modalities + 0.001 x load-balance loss
# (Eq. 7). AdamW lr 2e-4, wd 0.05,
# RandomResizedCrop(0.2-1.0) to 192 + horizontal flip.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

modalities = ('opt', 'ms', 'sar_l1', 'sar_l2')
data_root = 'data/ringmoss'
# per-band statistics of the data (tools/dataset_converters/compute_rs_stats.py)
stats_file = data_root + '/rs_stats.json'

mask_generator = dict(
    type='SimMIMMaskGenerator',
    input_size=192,
    mask_patch_size=32,
    model_patch_size=4,
    mask_ratio=0.6)
# the crop and flip also move the per-pixel maps: 'valid_mask' (every loader)
# and 'gt_power' (SAR-L1), nearest neighbour
geometric = [
    dict(type='mmringmoe.RSRandomResizedCrop', scale=192,
         crop_ratio_range=(0.2, 1.0)),
    dict(type='mmringmoe.RSRandomFlip', prob=0.5, direction='horizontal'),
]
# SAR-L1: the complex channels are resampled with nearest neighbour, so every
# input pixel stays a measured complex value (bilinear interpolation of
# complex speckle mixes phases: a 2x upsampling lowers the mean power by about
# 4 dB, depending on the random crop scale, away from the statistics)
geometric_sar_l1 = [
    dict(type='mmringmoe.RSRandomResizedCrop', scale=192,
         crop_ratio_range=(0.2, 1.0), interpolation='nearest'),
    dict(type='mmringmoe.RSRandomFlip', prob=0.5, direction='horizontal'),
]
pack = dict(
    type='PackInputs',
    algorithm_keys=['gt_power', 'valid_mask'],
    meta_keys=('img_path', 'modality', 'num_bands', 'flip'))
# one pipeline per modality: images stay in their dtype (uint8, int16 SAR)
# until the data preprocessor normalises them with the stored statistics; the
# SAR-L1 power target (Eq. 5) is computed from the raw complex values BEFORE
# the crop and flip, which then move it with the image. Pixels without a
# measurement (nodata, zero power) are False in 'valid_mask' and left out of
# the loss.
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
samples_per_modality = dict(opt=2, ms=2, sar_l1=2, sar_l2=2)
train_dataloader = dict(
    batch_size=8,  # = sum(samples_per_modality.values())
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='mmringmoe.ModalityBalancedSampler',
                 samples_per_modality=samples_per_modality),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='mmringmoe.RingMOSSDataset',
        data_root=data_root,
        modalities=modalities,
        pipeline=train_pipeline))

model = dict(
    type='mmringmoe.RingMoEMIM',
    backbone=dict(
        type='mmringmoe.RingMoE',
        arch='1b',
        modalities=modalities,
        moe_mode='sparse',
        window_size=12,
        pad_small_map=True,
        out_indices=(3, ),
        drop_path_rate=0.1,
        use_mask_token=True),
    head=dict(patch_size=4,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
    sar_l1_target='power',
    aux_loss_weight=0.001,
    data_preprocessor=dict(
        type='mmringmoe.RingMoEMIMDataPreprocessor',
        modalities=modalities,
        stats_file=stats_file))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(custom_keys={
        'norm': dict(decay_mult=0.),
        'bias': dict(decay_mult=0.),
        'mask_token': dict(decay_mult=0.),
        'logit_scale': dict(decay_mult=0.),
        'cpb_mlp': dict(decay_mult=0.),
    }))
# The paper gives optimizer, lr and wd only; schedule as SimMIM (Swin V2):
# 10 warm-up epochs, cosine decay, 100 epochs.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 2e-4, by_epoch=True, begin=0,
         end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=90, eta_min=1e-6, by_epoch=True,
         begin=10, end=100, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
custom_hooks = [dict(type='mmringmoe.MIMVisualizationHook', interval=5000)]
# unused specialised experts of absent modalities would otherwise stop DDP
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         find_unused_parameters=True)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_processor = dict(window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
auto_scale_lr = dict(base_batch_size=4096, enable=False)
