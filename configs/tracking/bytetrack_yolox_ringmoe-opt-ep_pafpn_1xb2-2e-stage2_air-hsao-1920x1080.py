# Tab. A16 (EP column):
# AIR-HSAO multi-object tracking: MOTA 83.84 (IDF1, HOTA also reported).
# ByteTrack + YOLOX on RingMoE-Opt-EP, paper B.5.5, stage 2 of 2: starts
# from the checkpoint of stage 1
#   bytetrack_yolox_ringmoe-opt-ep_pafpn_1xb2-5e-stage1_air-hsao-640x640.py
# with the backbone frozen, on the original 1920x1080 frames, SGD lr 4e-4,
# weight decay 0.005, batch size 2, 2 epochs. Inference: NMS 0.65, track
# threshold 0.3, buffer 50 frames, match threshold 0.8 (their mapping onto
# ByteTracker: configs/_base_/models/bytetrack_yolox_ringmoe_pafpn.py).
_base_ = [
    '../_base_/datasets/air-hsao_bytetrack.py',
    '../_base_/backbones/ringmoe-opt-ep.py',
]

model = dict(
    detector=dict(
        backbone=dict(
            _base_.backbone,
            out_indices=(1, 2, 3),
            # all 4 stages, the patch embedding and the output norms
            frozen_stages=3,
            # the weights come from stage 1 (load_from)
            init_cfg=None)))
train_dataloader = dict(
    dataset=dict(pipeline=_base_.full_frame_train_pipeline))
optim_wrapper = _base_.stage2_optim_wrapper
param_scheduler = _base_.stage2_param_scheduler
train_cfg = _base_.stage2_train_cfg
# stage 1's last checkpoint in tools/train.py's default work dir
load_from = 'work_dirs/bytetrack_yolox_ringmoe-opt-ep_pafpn_1xb2-5e-stage1_air-hsao-640x640/epoch_5.pth'  # noqa: E501
