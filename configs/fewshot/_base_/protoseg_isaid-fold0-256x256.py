# 1-shot few-shot segmentation on frozen RingMoE (paper Appendix B.5.8):
# masked average pooling of the support features into foreground/background
# prototypes, cosine similarity to the query. iSAID, fold 0 of Tab. A3.
# Everything except the backbone, which a leaf config adds.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmringmoe'], allow_failed_imports=False)

img_size = (256, 256)  # iSAID resized to 256 (B.5.8)
model = dict(
    type='mmringmoe.PrototypeFewShotSegmentor',
    backbone=dict(),
    feat_indices=(1, 2),  # 1/8 and 1/16 stages, concatenated at 1/8
    in_channels=896 + 1792,  # RingMoE-1B stage widths
    proj_channels=256,
    scale=20.,
    frozen=True,  # RingMoE fixed in training and testing (B.5.8)
    data_preprocessor=dict(
        type='mmringmoe.EpisodeDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,  # LoadRSImageFromFile keeps the file's RGB order
        image_keys=('query', 'support')))

# ---------------------------------------------------------------- data
dataset_type = 'mmringmoe.FewShotSegEpisodeDataset'
dataset_name = 'isaid'
fold = 0
# mmseg's iSAID layout (its isaid.py converter): img_dir/{train,val},
# ann_dir/{train,val} (*_instance_color_RGB.png class-index maps)
data_root = 'data/iSAID'
# The file's dtype and band order are kept and its 3 bands checked; label
# maps are class indices in the file's own dtype (16-bit maps are refused,
# not wrapped; JPEG is refused), and pixels the image file declares nodata
# become ignore (255).
load_image = dict(type='mmringmoe.LoadRSImageFromFile', modality='opt')
load_label = dict(type='mmringmoe.LoadSegAnnotations')
train_pipeline = [
    load_image,
    load_label,
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
]
test_pipeline = [
    load_image,
    load_label,
    dict(type='Resize', scale=img_size, keep_ratio=False),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, dataset_name=dataset_name, fold=fold,
        split='train', data_root=data_root,
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, dataset_name=dataset_name, fold=fold,
        split='test', data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        num_episodes=1000, seed=321,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU over the fold's novel classes; the paper averages it over the folds
val_evaluator = dict(type='mmringmoe.FewShotSegMetric')
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
# SGD momentum 0.9, wd 1e-4, batch 8, 60 epochs, lr 0.005 (iSAID) (B.5.8);
# poly decay as in PFENet / DMNet
max_epochs = 60
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', power=0.9, eta_min=0., by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ---------------------------------------------------------------- runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=10,
                    max_keep_ckpts=2, save_best='mIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
