# Few-shot classification, UC Merced (10 train classes, Tab. A2 val/test), 5-way 5-shot.
_base_ = ['./relationnet_nwpu-resisc45-5way-1shot.py']

dataset_name = 'ucm'
data_root = 'data/UCMerced_LandUse/Images'
num_shots = 5
train_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
val_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
test_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
