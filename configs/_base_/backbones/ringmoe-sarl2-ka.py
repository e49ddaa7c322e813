# RingMoE-sarl2-KA: 1B dense model merged by knowledge averaging.
# Input: amplitude SAR-L2 (1 ch). Downstream configs inherit this file and use
# `model = dict(backbone={{_base_.backbone}})` (or a field-wise override).
# `checkpoint` is the file written by tools/model_converters (see README).
backbone = dict(
    type='mmringmoe.RingMoE',
    arch='1b',
    modalities=('sar_l2', ),
    moe_mode='dense',
    window_size=12,
    pad_small_map=True,
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.2,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/ringmoe-1b_sarl2-ka.pth'))
