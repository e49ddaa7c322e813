# 1-shot segmentation with frozen RingMoE-Opt KC 1B, isaid fold 1 (Tab. A16: mean over folds 0-2).
_base_ = ['./_base_/protoseg_isaid-fold1-256x256.py', '../_base_/backbones/ringmoe-opt-kc.py']
model = dict(backbone={{_base_.backbone}})
