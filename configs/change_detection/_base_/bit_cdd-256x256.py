# BIT on RingMoE, CDD (Lebedev et al. season-varying "Real/subset", 256 x 256):
# <split>/{A,B,OUT}/*.jpg, 10000 / 3000 / 3000 pairs. Same model and schedule as LEVIR-CD.
_base_ = ['./bit_levircd-256x256.py']

dataset_type = 'mmringmoe.CDDDataset'
data_root = 'data/ChangeDetectionDataset/Real/subset'
# CDD's OUT masks are 0/255 JPEG: compression noise around 0 and 255, split
# at 128 (a 0/1 file is refused under this convention).
label_convention = '0/255-jpeg'
load_label = dict(type='mmringmoe.LoadChangeLabel',
                  label_convention=label_convention)
train_pipeline = [_base_.load_pair, load_label] + _base_.train_pipeline[2:]
test_pipeline = [_base_.load_pair, load_label] + _base_.test_pipeline[2:]
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='train/A', img_path2='train/B', seg_map_path='train/OUT'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='val/A', img_path2='val/B', seg_map_path='val/OUT'),
        pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='test/A', img_path2='test/B', seg_map_path='test/OUT'),
        pipeline=test_pipeline))
