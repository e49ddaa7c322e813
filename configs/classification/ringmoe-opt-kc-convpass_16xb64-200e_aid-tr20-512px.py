# Fig. 12b (PEFT): AID (TR=20%) with Convpass adapters in a frozen
# RingMoE-KC; only the adapters and the linear head train (the trainable count
# is logged at start-up). The paper plots this result without a number in the
# text. Adapter width 8 and scale 0.01 are Convpass's defaults (the paper
# gives none). Schedule and data as the fine-tuning config.
_base_ = ['./ringmoe-opt-kc_16xb64-200e_aid-tr20-512px.py']
model = dict(
    backbone=dict(
        type='mmringmoe.ConvpassRingMoE', adapter_dims=8, adapter_scale=0.01))
