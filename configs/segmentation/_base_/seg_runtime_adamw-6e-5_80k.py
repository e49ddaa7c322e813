# Multi-modal segmentation schedule, Appendix B.5.3: AdamW, lr 6e-5, weight
# decay 0.01; linear warm-up over 1,500 iterations from factor 0.1, then
# polynomial decay to 1e-6; 80k iterations. Rest as seg_runtime_adamw-1e-4_80k.py.
_base_ = ['./seg_runtime_adamw-1e-4_80k.py']
optim_wrapper = dict(optimizer=dict(lr=6e-5, weight_decay=0.01))
