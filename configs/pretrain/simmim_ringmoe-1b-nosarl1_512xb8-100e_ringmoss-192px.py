# Tab. A17 "without SAR-L1": opt, ms and sar_l2 only (same backbone and
# collaborative experts; RingMoE-SAR_L1 downstream then starts from scratch).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
modalities = ('opt', 'ms', 'sar_l2')
model = dict(
    backbone=dict(modalities=modalities),
    data_preprocessor=dict(modalities=modalities))
train_dataloader = dict(
    batch_size=9,
    sampler=dict(samples_per_modality=dict(_delete_=True, opt=3, ms=3,
                                           sar_l2=3)),
    dataset=dict(modalities=modalities,
                 pipeline=dict(_delete_=True,
                               opt={{_base_.train_pipeline.opt}},
                               ms={{_base_.train_pipeline.ms}},
                               sar_l2={{_base_.train_pipeline.sar_l2}})))
