# Fig. 12a (generalisation, frozen backbone): iSAID mIoU 67.39 with RingMoE-KC
# frozen (frozen_stages=3: every stage, patch embedding and output norm) and
# only the UperNet heads trained. Data and schedule as the fine-tuning config.
_base_ = ['./upernet_ringmoe-opt-kc_8xb1-80k_isaid-896x896.py']
model = dict(backbone=dict(frozen_stages=3))
