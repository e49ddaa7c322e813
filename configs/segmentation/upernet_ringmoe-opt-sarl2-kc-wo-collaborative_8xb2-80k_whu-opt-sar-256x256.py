# Tab. 6 (row without the collaborative experts): WHU-OPT-SAR, mIoU 52.63.
# RingMoE pretrained with expert_types lacking 'collaborative', then merged by KC for the
# optical and the SAR-L2 modality: the layout is that of the KC model, only the
# checkpoints differ. Model, data and schedule as the full-model config.
_base_ = ['./upernet_ringmoe-opt-sarl2-kc_8xb2-80k_whu-opt-sar-256x256.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_opt-kc_wo-collaborative.pth')),
    sar_backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_sarl2-kc_wo-collaborative.pth')))
