# Tab. 6 (row without the specialized experts): HRSID, mAP50 93.24.
# RingMoE pretrained with expert_types lacking 'specialized', then merged by KC like the full model.
# KC folds every kept expert into one dense FFN per block (Eq. 18-20), so the
# merged backbone has exactly the layout of RingMoE-SARL2-KC: only the
# checkpoint differs. Detector, data and schedule as in the full-model config.
_base_ = './faster-rcnn_ringmoe-sarl2-kc_fpn_8xb2-12e_hrsid-800x800.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/ringmoe-1b_sarl2-kc_wo-specialized.pth')))
