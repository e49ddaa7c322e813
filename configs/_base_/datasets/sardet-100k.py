# SARDet-100k (6 classes, amplitude SAR, COCO json), paper Tab. A15. Split
# (paper silent): the data set's own train / val / test; trained on train,
# tested on test. Single-band input as in hrsid.py.
_base_ = './hrsid.py'

dataset_type = 'mmringmoe.SARDet100kDataset'
data_root = 'data/SARDet_100K/'

# statistics of the training images:
#   python tools/dataset_converters/compute_rs_stats.py \
#       data/SARDet_100K/JPEGImages/train --modality sar_l2 --collapse-identical-bands \
#       --out data/SARDet_100K/rs_stats.json
stats_file = data_root + 'rs_stats.json'
normalize_sar_l2 = dict(
    type='mmringmoe.NormalizeRS', stats_file=stats_file, modality='sar_l2')
train_pipeline = [
    _base_.load_sar_l2,
    normalize_sar_l2,
] + _base_.train_pipeline[2:]
test_pipeline = [
    _base_.load_sar_l2,
    normalize_sar_l2,
] + _base_.test_pipeline[2:]

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Annotations/train.json',
        data_prefix=dict(img='JPEGImages/train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Annotations/val.json',
        data_prefix=dict(img='JPEGImages/val/'),
        pipeline=test_pipeline))
# merged into the base's test_dataloader (a copy of its val_dataloader)
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Annotations/test.json',
        data_prefix=dict(img='JPEGImages/test/'),
        pipeline=test_pipeline))

val_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(
        type='CocoMetric',
        ann_file=data_root + 'Annotations/val.json',
        metric='bbox'),
]
test_evaluator = [
    dict(type='VOCMetric', metric='mAP', eval_mode='area'),
    dict(
        type='CocoMetric',
        ann_file=data_root + 'Annotations/test.json',
        metric='bbox'),
]
