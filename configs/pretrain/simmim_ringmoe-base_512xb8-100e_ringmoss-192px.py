# RingMoE@Swin-88M (Tab. 5): Swin-B sizes (128, (2,2,18,2), (4,8,16,32)) with
# RMoE layers, otherwise identical to the 1b run.
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
model = dict(backbone=dict(arch='base'))
