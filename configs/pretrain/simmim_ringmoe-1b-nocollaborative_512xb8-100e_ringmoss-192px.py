# Tab. 6 expert design ablation: collaborative experts removed (row 1).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
model = dict(backbone=dict(expert_types=('specialized', 'shared')))
