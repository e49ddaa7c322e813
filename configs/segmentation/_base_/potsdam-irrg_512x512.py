# ISPRS Potsdam, IRRG (Appendix B.5.2): 24 tiles for training, 14 for
# testing (mmseg's split), near-infrared/red/green bands. Prepare with mmseg's
# converter on the IRRG archive (512 x 512 patches, stride 256):
#   MMSEG=$(python -c "import mmseg, os; print(os.path.dirname(mmseg.__file__))")
#   python $MMSEG/.mim/tools/dataset_converters/potsdam.py FOLDER -o data/potsdam
# where FOLDER holds only 3_Ortho_IRRG.zip and 5_Labels_all_noBoundary.zip
# (the converter reads every zip it finds there).
# The paper reports mF1 over the five classes impervious surface, building,
# low vegetation, tree and car: clutter is learned but left out of the means.
# Paper: crop 512, batch 8, RandomFlip, RandomScaling 0.5-2.0, RandomCrop.
# Not in the paper (mmseg Potsdam defaults): scale (512, 512), cat_max_ratio
# 0.75, ImageNet mean/std, test at (512, 512) keeping the aspect ratio.
dataset_type = 'PotsdamDataset'
data_root = 'data/potsdam'
crop_size = (512, 512)
num_classes = 6
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
val_evaluator = dict(
    type='mmringmoe.RSSegMetric',
    report_classes=('impervious_surface', 'building', 'low_vegetation',
                    'tree', 'car'))
test_evaluator = val_evaluator
