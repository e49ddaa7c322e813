# AIR-HSAO (paper B.5.5): high-speed airplanes in Jilin satellite videos,
# 1920x1080, one class (aircraft); 128 training and 69 test videos, scored
# on test (airmot2coco.py --dataset air-hsao).
# Annotations: run tools/dataset_converters/airmot2coco.py first (input
# layout documented in mmringmoe/datasets/mot_convert.py), giving
#   data/AIR-HSAO/{train,test}/<video>/img/000001.jpg ...
#   data/AIR-HSAO/annotations/{train,test}_cocoformat.json
# Same model, pipelines and loaders as AIR-MOT; only the class list and the
# data root differ.
_base_ = './air-mot_bytetrack.py'

classes = ('aircraft', )
data_root = 'data/AIR-HSAO/'

model = dict(detector=dict(bbox_head=dict(num_classes=len(classes))))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
