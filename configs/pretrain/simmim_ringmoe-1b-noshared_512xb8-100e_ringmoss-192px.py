# Tab. 6 expert design ablation: shared expert removed (row 3).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
model = dict(backbone=dict(expert_types=('specialized', 'collaborative')))
