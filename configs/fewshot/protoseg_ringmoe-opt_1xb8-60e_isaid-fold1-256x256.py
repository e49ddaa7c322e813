# 1-shot segmentation with frozen RingMoE-Opt 6.5B, isaid fold 1 (Tab. A5: mean over folds 0-2).
_base_ = ['./_base_/protoseg_isaid-fold1-256x256.py', '../_base_/backbones/ringmoe-opt.py']
model = dict(backbone={{_base_.backbone}})
