"""Load-balance loss of sparse RingMoE backbones during fine-tuning.

Sparse (RMoE) backbones keep their routers trainable downstream, so the
auxiliary balance loss of pretraining (Eq. 4, weight alpha = 0.001) is
added to the task loss; dense (merged KS/KA/KC) backbones have none.
"""
import torch


def moe_balance_loss(*backbones, weight: float = 0.001):
    """``{'loss_moe_balance': weight * sum(aux)}`` or ``{}`` when no backbone
    holds RMoE layers (or ``weight`` is 0). A frozen backbone's loss carries
    no gradient (nothing could lower it), so it is left out."""
    terms = []
    for bb in backbones:
        layers = getattr(bb, 'rmoe_layers', None)
        if weight and layers is not None and layers():
            aux = bb.aux_loss()
            if aux.requires_grad or not torch.is_grad_enabled():
                terms.append(aux)
    if not terms:
        return {}
    return {'loss_moe_balance': weight * torch.stack(
        [t.float().reshape(()) for t in terms]).sum()}


def log_trainable(model, name: str):
    """Log how many parameters train (Fig. 12b compares PEFT with full
    fine-tuning by this count)."""
    from mmengine.logging import MMLogger
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    MMLogger.get_current_instance().info(
        f'{name}: {trainable:,} of {total:,} parameters trainable '
        f'({100.0 * trainable / max(total, 1):.2f}%)')
    return trainable, total
