# Tab. 5: RingMoE@Swin-88M on AID (TR=20%), OA 96.57: the Swin-B sizes
# (embed 128, depths 2-2-18-2, heads 4-8-16-32) with RMoE layers, the optical
# modality of the sparse model; everything else as the RingMoE@Swin-1B config.
_base_ = ['./ringmoe-opt_16xb64-200e_aid-tr20-512px.py']
model = dict(
    backbone=dict(
        arch='base',
        init_cfg=dict(
            type='Pretrained', checkpoint='checkpoints/ringmoe-base_opt.pth')),
    head=dict(in_channels=1024))
