# Multi-modal UperNet (Appendix B.5.3): RingMoE-Opt encodes the optical
# image, RingMoE-SAR-L2 the SAR image; per level the two feature maps are
# concatenated and fused by a 3x3 then a 1x1 convolution (back to the optical
# width), then the UperNet head. Backbones come from the leaf config; head and
# auxiliary head as in upernet_ringmoe.py (mmseg defaults).
_base_ = ['./upernet_ringmoe.py']
model = dict(
    type='mmringmoe.DualModalityEncoderDecoder',
    modality_channels=(('opt', 3), ('sar_l2', 1)),
    fusion_norm_cfg={{_base_.norm_cfg}})
