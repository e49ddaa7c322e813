# Tab. 6 (row without the specialized experts): Dyna.-pla (MS), mIoU 46.28.
# RingMoE pretrained with expert_types lacking 'specialized', then merged by KC like
# the full model: the merged backbone has exactly the layout of RingMoE-MS-KC,
# only the checkpoint differs. Head, data and schedule as the full-model config.
_base_ = ['./upernet_ringmoe-ms-kc_8xb1-16k_dynamicearthnet-planet-1024x1024.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_ms-kc_wo-specialized.pth')))
