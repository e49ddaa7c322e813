# Fig. 12b (PEFT): iSAID with Convpass adapters in a frozen RingMoE-KC; only
# the adapters and the UperNet heads train (the trainable count is logged at
# start-up; the paper reports ~80M, 7.5% of full fine-tuning). The paper plots
# this result without a number in the text. Adapter width 8 and scale 0.01 are
# Convpass's defaults (the paper gives none). Data and schedule as the
# fine-tuning config.
_base_ = ['./upernet_ringmoe-opt-kc_8xb1-80k_isaid-896x896.py']
model = dict(
    backbone=dict(
        type='mmringmoe.ConvpassRingMoE', adapter_dims=8, adapter_scale=0.01))
