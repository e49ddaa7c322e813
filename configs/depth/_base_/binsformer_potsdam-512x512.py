# BinsFormer on RingMoE, ISPRS Potsdam: RGB tiles (near-infrared dropped, as
# in the paper) -> DSM, 24 train / 14 test tiles. Model and schedule as Vaihingen.
_base_ = ['./binsformer_vaihingen-512x512.py']

dataset_type = 'mmringmoe.PotsdamDepthDataset'
data_root = 'data/potsdam'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = val_dataloader
