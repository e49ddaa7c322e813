# iSAID (Appendix B.5.2): 16 classes (15 objects + background), trained on
# the training set, evaluated on the validation set. Prepare with mmseg's
# converter (896 x 896 patches):
#   MMSEG=$(python -c "import mmseg, os; print(os.path.dirname(mmseg.__file__))")
#   python $MMSEG/.mim/tools/dataset_converters/isaid.py /path/to/iSAID -o data/iSAID
# Paper: crop 896, batch 8, RandomFlip, RandomScaling 0.5-2.0, RandomCrop.
# Not in the paper (mmseg iSAID defaults): scale (896, 896), cat_max_ratio
# 0.75, ImageNet mean/std, test at (896, 896) keeping the aspect ratio.
dataset_type = 'iSAIDDataset'
data_root = 'data/iSAID'
crop_size = (896, 896)
num_classes = 16
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=False,  # LoadRSImageFromFile keeps the file's band order
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
# The file's dtype and band order are kept and its 3 bands checked (mmseg's
# LoadImageFromFile converted any file to 8-bit BGR); pixels the file declares
# nodata become ignore (255) in the label.
load_image = dict(type='mmringmoe.LoadRSImageFromFile', modality='opt')
train_pipeline = [
    load_image,
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    load_image,
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='mmringmoe.LoadSegAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmringmoe.RSSegMetric')
test_evaluator = val_evaluator
