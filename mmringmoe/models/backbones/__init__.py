from .ringmoe import MODALITY_CHANNELS, RingMoE, to_mmpretrain_state_dict
from .ringmoe_mindspore import RingMoEMindSpore  # noqa: F401

__all__ = ['MODALITY_CHANNELS', 'RingMoE', 'to_mmpretrain_state_dict']
