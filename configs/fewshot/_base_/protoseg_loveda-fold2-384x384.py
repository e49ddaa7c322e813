# 1-shot segmentation, LoveDA fold 2 of Tab. A3.
_base_ = ['./protoseg_loveda-fold0-384x384.py']

fold = 2
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = val_dataloader
