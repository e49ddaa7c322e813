# Tab. A13: NWPU-RESISC45 with 20% of every class for training (the MLLM
# protocol), OA 96.28 with RingMoE-KC. Split:
#   python tools/dataset_converters/cls_split.py data/NWPU-RESISC45 --train-ratio 0.2
_base_ = ['./ringmoe-opt-kc_16xb64-200e_nwpu-resisc45-tr10-224px.py']
train_dataloader = dict(
    dataset=dict(ann_file='splits/nwpu-resisc45_tr20/train.txt'))
val_dataloader = dict(
    dataset=dict(ann_file='splits/nwpu-resisc45_tr20/test.txt'))
test_dataloader = val_dataloader
