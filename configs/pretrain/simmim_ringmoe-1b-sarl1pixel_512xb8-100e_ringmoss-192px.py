# Tab. A18 "pixel reconstruction": SAR-L1 reconstructs its 8 normalised
# real/imaginary channels instead of the polarimetric power.
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
model = dict(sar_l1_target='pixel')
