# Few-shot classification, WHU-RS19 (9/5/5 classes, 600 x 600 images), 5-way 5-shot.
_base_ = ['./relationnet_nwpu-resisc45-5way-1shot.py']

dataset_name = 'whu-rs19'
data_root = 'data/WHU-RS19'
num_shots = 5
train_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
val_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
test_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
