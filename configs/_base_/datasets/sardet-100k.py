# SARDet-100k (6 classes, amplitude SAR, COCO json), paper Tab. A15. Split
# (paper silent): the data set's own train / val / test; trained on train,
# tested on test. Single-band input as in hrsid.py.
_base_ = './hrsid.py'

dataset_type = 'mmringmoe.SARDet100kDataset'
data_root = 'data/SARDet_100K/'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Annotations/train.json',
        data_prefix=dict(img='JPEGImages/train/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Annotations/val.json',
        data_prefix=dict(img='JPEGImages/val/')))
# merged into the base's test_dataloader (a copy of its val_dataloader)
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='Annotations/test.json',
        data_prefix=dict(img='JPEGImages/test/')))

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
