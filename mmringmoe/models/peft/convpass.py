"""Convpass parameter-efficient fine-tuning of RingMoE (paper Fig. 12b).

Convpass (Jie & Deng, 2022) adds a small convolutional bypass beside each
residual branch of a frozen transformer: tokens are projected down, reshaped
to their 2-D grid, passed through a 3x3 convolution, projected back up and
added, scaled by ``s``, to the branch output. Only the bypasses (and the task
head) are trained.

RingMoE's Swin V2 blocks are post-norm (``x + norm1(attn(x))``,
``x + norm2(ffn(x))``), so the bypass of each branch takes the branch input
and is added after the branch's norm. It is attached with forward hooks,
which leaves every original parameter name unchanged: RingMoE checkpoints
load as they are, and the adapters live under ``convpass.*``.
"""
from typing import Dict

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from mmringmoe.registry import MODELS
from ..backbones.ringmoe import RingMoE


class QuickGELU(nn.Module):

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ConvpassAdapter(nn.Module):
    """Down-projection, 3x3 conv on the token grid, up-projection.

    Initialised as in Convpass (``xavier_init=True``): Xavier down-projection
    and convolution, zero biases and zero up-projection, so the frozen
    model's output is unchanged at the start of fine-tuning.
    """

    def __init__(self, embed_dims: int, hidden_dims: int = 8,
                 drop: float = 0.1):
        super().__init__()
        self.down = nn.Linear(embed_dims, hidden_dims)
        self.conv = nn.Conv2d(hidden_dims, hidden_dims, 3, padding=1)
        self.up = nn.Linear(hidden_dims, embed_dims)
        self.act = QuickGELU()
        self.drop = nn.Dropout(drop)
        nn.init.xavier_uniform_(self.down.weight)
        nn.init.zeros_(self.down.bias)
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor, hw_shape) -> torch.Tensor:
        b, n, _ = x.shape
        h, w = hw_shape
        if n != h * w:
            raise ValueError(f'Convpass: {n} tokens do not form a {h}x{w} grid')
        y = self.act(self.down(x))
        y = y.transpose(1, 2).reshape(b, -1, h, w)
        y = self.act(self.conv(y))
        y = y.flatten(2).transpose(1, 2)
        return self.up(self.drop(y))


@MODELS.register_module()
class ConvpassRingMoE(RingMoE):
    """RingMoE with every original weight frozen and Convpass adapters in
    each block (one beside attention, one beside the FFN / RMoE layer).

    Args:
        adapter_dims (int): bottleneck width of the adapters. Defaults to 8
            (Convpass).
        adapter_scale (float): ``s``, the bypass scale. Defaults to 0.01
            (Convpass's default).
        adapter_drop (float): dropout inside the adapters. Defaults to 0.1.
        Other args as :class:`RingMoE`.
    """

    def __init__(self,
                 *args,
                 adapter_dims: int = 8,
                 adapter_scale: float = 0.01,
                 adapter_drop: float = 0.1,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.adapter_scale = adapter_scale
        self.convpass = nn.ModuleDict()
        self._bypass_inputs: Dict[str, tuple] = {}
        for i, stage in enumerate(self.stages):
            for j, block in enumerate(stage.blocks):
                dims = stage.out_channels
                for branch, (inner, norm) in dict(
                        attn=(block.attn, block.norm1),
                        ffn=(block.ffn, block.norm2)).items():
                    key = f'stages_{i}_blocks_{j}_{branch}'
                    self.convpass[key] = ConvpassAdapter(
                        dims, adapter_dims, adapter_drop)
                    self._attach(key, inner, norm, attn_key=(
                        key if branch == 'attn' else
                        f'stages_{i}_blocks_{j}_attn'))
        self.freeze_original()
        MMLogger.get_current_instance().info(
            f'Convpass: {self.num_trainable_params():,} trainable adapter '
            f'parameters, {self.num_frozen_params():,} frozen RingMoE '
            'parameters')

    def _attach(self, key, inner, norm, attn_key):
        adapter = self.convpass[key]
        cache = self._bypass_inputs

        def save_input(module, args):
            x = args[0]
            # the attention branch receives hw_shape; the FFN branch reuses it
            hw = args[1] if len(args) > 1 else cache[attn_key][1]
            cache[key] = (x, hw)

        def add_bypass(module, args, output):
            x, hw = cache[key]
            return output + self.adapter_scale * adapter(x, hw)

        inner.register_forward_pre_hook(save_input)
        norm.register_forward_hook(add_bypass)

    def freeze_original(self):
        for name, param in self.named_parameters():
            param.requires_grad = name.startswith('convpass.')

    def num_trainable_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def num_frozen_params(self) -> int:
        return sum(p.numel() for p in self.parameters()
                   if not p.requires_grad)

    def train(self, mode: bool = True):
        super().train(mode)
        self.freeze_original()
        return self

    def forward(self, *args, **kwargs):
        try:
            return super().forward(*args, **kwargs)
        finally:
            # checkpointed blocks recompute with their own pre-hooks
            if not self.with_cp:
                self._bypass_inputs.clear()


__all__ = ['ConvpassAdapter', 'ConvpassRingMoE']
