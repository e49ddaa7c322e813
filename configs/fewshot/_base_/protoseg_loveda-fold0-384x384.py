# 1-shot segmentation, LoveDA fold 0 of Tab. A3 (background excluded),
# images resized to 384, lr 0.003 (B.5.8). mmseg's LoveDA layout:
# img_dir/{train,val}/*.png, ann_dir/{train,val}/*.png (0 = no data).
_base_ = ['./protoseg_isaid-fold0-256x256.py']

img_size = (384, 384)
dataset_name = 'loveda'
data_root = 'data/loveDA'
train_pipeline = [
    _base_.load_image,
    _base_.load_label,
    dict(type='Resize', scale=img_size, keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
]
test_pipeline = [
    _base_.load_image,
    _base_.load_label,
    dict(type='Resize', scale=img_size, keep_ratio=False),
]
train_dataloader = dict(
    dataset=dict(dataset_name=dataset_name, data_root=data_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(dataset_name=dataset_name, data_root=data_root,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.003))
