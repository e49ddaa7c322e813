# Few-shot classification, NWPU-RESISC45 (25/10/10 classes, 700 images each), 5-way 5-shot.
_base_ = ['./relationnet_nwpu-resisc45-5way-1shot.py']

dataset_name = 'nwpu-resisc45'
data_root = 'data/NWPU-RESISC45'
num_shots = 5
train_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
val_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
test_dataloader = dict(dataset=dict(dataset_name=dataset_name, data_root=data_root, num_shots=num_shots))
