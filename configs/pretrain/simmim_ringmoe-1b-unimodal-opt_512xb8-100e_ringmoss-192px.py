# Fig. 12c uni-modal variant: pretrained on optical images only; only the
# optical modal-specialized experts exist (and are activated).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
modalities = ('opt', )
model = dict(
    backbone=dict(modalities=modalities),
    data_preprocessor=dict(modalities=modalities))
train_dataloader = dict(
    sampler=dict(samples_per_modality=dict(_delete_=True, opt=8)),
    dataset=dict(modalities=modalities,
                 pipeline=dict(_delete_=True, opt={{_base_.train_pipeline.opt}})))
