# Fig. 12c uni-modal variant: pretrained on SAR only (complex SAR-L1 and
# amplitude SAR-L2 from GF-3); only the SAR modal-specialized experts exist.
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
modalities = ('sar_l1', 'sar_l2')
model = dict(
    backbone=dict(modalities=modalities),
    data_preprocessor=dict(modalities=modalities))
train_dataloader = dict(
    sampler=dict(samples_per_modality=dict(_delete_=True, sar_l1=4, sar_l2=4)),
    dataset=dict(modalities=modalities,
                 pipeline=dict(_delete_=True,
                               sar_l1={{_base_.train_pipeline.sar_l1}},
                               sar_l2={{_base_.train_pipeline.sar_l2}})))
