# 1-shot segmentation, iSAID fold 1 of Tab. A3.
_base_ = ['./protoseg_isaid-fold0-256x256.py']

fold = 1
train_dataloader = dict(dataset=dict(fold=fold))
val_dataloader = dict(dataset=dict(fold=fold))
test_dataloader = val_dataloader
