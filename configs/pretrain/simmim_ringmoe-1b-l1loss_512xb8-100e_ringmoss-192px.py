# L1 reconstruction loss (the authors' released code) instead of Eq. 6's
# squared error.
_base_ = ['../_base_/pretrain/ringmoe_mim_192px.py']
model = dict(head=dict(loss=dict(criterion='L1')))
