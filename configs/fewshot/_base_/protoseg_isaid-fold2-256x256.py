# 1-shot segmentation, iSAID fold 2 of Tab. A3.
_base_ = ['./protoseg_isaid-fold0-256x256.py']

fold = 2
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = val_dataloader
