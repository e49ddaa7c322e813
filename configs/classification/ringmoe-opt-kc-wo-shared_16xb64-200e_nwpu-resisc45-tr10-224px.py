# Tab. 6 (row without the shared experts): NWPU-RESISC45 (TR=10%), OA 94.59.
# RingMoE pretrained with expert_types lacking 'shared', then merged by KC like
# the full model: the merged backbone has exactly the layout of RingMoE-Opt-KC,
# only the checkpoint differs. Head, data and schedule as the full-model config.
_base_ = ['./ringmoe-opt-kc_16xb64-200e_nwpu-resisc45-tr10-224px.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_opt-kc_wo-shared.pth')))
