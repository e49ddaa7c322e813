# RingMoE (Swin V2 1B sizes + RMoE, 14.7B parameters with 4 modalities)
# multi-modal MIM pretraining on RingMOSS (paper Sec. 3.1/3.3, Appendix B.3):
# AdamW lr 2e-4 wd 0.05, RandomResizedCrop(0.2-1.0) to 192, horizontal flip,
# mask patch 32 ratio 0.6, physics-informed SAR-L1 power target.
# 512 processes x 8 samples (2 per modality). The paper used 512 Ascend 910;
# it does not give the batch size or the schedule (here SimMIM's 100 epochs).
# 14.7B in fp32 with AdamW does not fit a DDP replica on one device: use the
# FSDP variant simmim_ringmoe-1b-fsdp_512xb8-100e_ringmoss-192px.py.
# Data: data/ringmoss/{opt,ms,sar_l1,sar_l2}/ tiles (tile_rs_images.py) and
# data/ringmoss/rs_stats.json (compute_rs_stats.py).
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
