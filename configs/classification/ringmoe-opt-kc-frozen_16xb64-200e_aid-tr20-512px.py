# Fig. 12a (generalisation, frozen backbone): AID (TR=20%) OA 95.82 with
# RingMoE-KC frozen (every stage, patch embedding and output norm: frozen_stages=3)
# and only the linear head trained. Schedule and data as the fine-tuning config.
_base_ = ['./ringmoe-opt-kc_16xb64-200e_aid-tr20-512px.py']
model = dict(backbone=dict(frozen_stages=3))
