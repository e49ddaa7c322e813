# Few-shot scene classification on frozen RingMoE (paper Appendix B.5.8):
# RelationNet-style similarity head, 5-way 1-shot episodes, NWPU-RESISC45
# class split of Tab. A2. Everything except the backbone, which a leaf config
# adds from ../_base_/backbones/ringmoe-opt*.py.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

num_ways = 5
num_shots = 1
num_queries = 15
img_size = 256
model = dict(
    type='mmringmoe.RelationNetClassifier',
    backbone=dict(),
    feat_indices=(-1, ),  # last RingMoE stage
    in_channels=3584,  # RingMoE-1B last stage width
    relation_channels=64,
    relation_hidden=8,
    frozen=True,  # RingMoE fixed in training and testing (B.5.8)
    data_preprocessor=dict(
        type='mmringmoe.EpisodeDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))

# ---------------------------------------------------------------- data
dataset_type = 'mmringmoe.FewShotClsEpisodeDataset'
dataset_name = 'nwpu-resisc45'
data_root = 'data/NWPU-RESISC45'  # <class folder>/<image>.jpg
# resize to 256, random crop and horizontal flip (B.5.8)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='RandomCrop', crop_size=img_size, padding=16),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
]
max_iters = 10000  # training episodes (not given by the paper)
train_dataloader = dict(
    batch_size=1,  # one episode per iteration
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, dataset_name=dataset_name, split='train',
        data_root=data_root, num_ways=num_ways, num_shots=num_shots,
        num_queries=num_queries, num_episodes=max_iters, seed=0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, dataset_name=dataset_name, split='val',
        data_root=data_root, num_ways=num_ways, num_shots=num_shots,
        num_queries=num_queries, num_episodes=600, seed=1,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, dataset_name=dataset_name, split='test',
        data_root=data_root, num_ways=num_ways, num_shots=num_shots,
        num_queries=num_queries, num_episodes=600, seed=2,
        pipeline=test_pipeline))
# overall accuracy, mean +- 95% confidence interval over test episodes
val_evaluator = dict(type='mmringmoe.FewShotAccuracy')
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
# SGD, lr 0.001, weight decay 5e-4 (B.5.8)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=5e-4))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000,
                    max_keep_ckpts=2, save_best='accuracy', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
