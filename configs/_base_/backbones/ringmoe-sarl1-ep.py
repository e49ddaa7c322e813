# RingMoE-sarl1-EP: 4.3B EP model: top-25% collaborative experts kept, i.e. 1 of 4 per block for one modality.
# Input: complex SAR-L1 (8 ch). Downstream configs inherit this file and use
# `model = dict(backbone={{_base_.backbone}})` (or a field-wise override).
# `checkpoint` is the file written by tools/model_converters (see README).
backbone = dict(
    type='mmringmoe.RingMoE',
    # EP keeps the full collaborative router (4 logits) and masks the dropped experts
    arch=dict(base='1b', num_collab_experts=1, num_collab_router_experts=4),
    modalities=('sar_l1', ),
    moe_mode='sparse',
    window_size=12,
    pad_small_map=True,
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.2,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ringmoe-1b_sarl1-ep.pth'))
