# Tab. 5: RingMoE@Swin-88M on NWPU-RESISC45 (TR=10%), OA 93.64: the Swin-B sizes
# (embed 128, depths 2-2-18-2, heads 4-8-16-32) with RMoE layers, the optical
# modality of the sparse model; everything else as the RingMoE@Swin-1B config.
_base_ = ['./ringmoe-opt_16xb64-200e_nwpu-resisc45-tr10-224px.py']
model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/ringmoe-base_opt.pth')),
    head=dict(in_channels=1024))
