# Tab. 6 expert design ablation: modal-specialized experts removed (row 2).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
model = dict(backbone=dict(expert_types=('collaborative', 'shared')))
