# BIT on RingMoE, CDD (Lebedev et al. season-varying "Real/subset", 256 x 256):
# <split>/{A,B,OUT}/*.jpg, 10000 / 3000 / 3000 pairs. Same model and schedule as LEVIR-CD.
_base_ = ['./bit_levircd-256x256.py']

dataset_type = 'mmringmoe.CDDDataset'
data_root = 'data/ChangeDetectionDataset/Real/subset'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='train/A', img_path2='train/B', seg_map_path='train/OUT')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='val/A', img_path2='val/B', seg_map_path='val/OUT')))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='test/A', img_path2='test/B', seg_map_path='test/OUT')))
