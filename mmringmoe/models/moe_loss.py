"""Load-balance loss of sparse RingMoE backbones during fine-tuning.

Sparse (RMoE) backbones keep their routers trainable downstream, so the
auxiliary balance loss of pretraining (Eq. 4, weight alpha = 0.001) is
added to the task loss; dense (merged KS/KA/KC) backbones have none.
"""
import torch


def moe_balance_loss(*backbones, weight: float = 0.001):
    """``{'loss_moe_balance': weight * sum(aux)}`` or ``{}`` when no backbone
    holds RMoE layers (or ``weight`` is 0)."""
    terms = []
    for bb in backbones:
        layers = getattr(bb, 'rmoe_layers', None)
        if weight and layers is not None and layers():
            terms.append(bb.aux_loss())
    if not terms:
        return {}
    return {'loss_moe_balance': weight * torch.stack(
        [t.float().reshape(()) for t in terms]).sum()}
