"""RingMoE as built by the authors' MindSpore release (HanboBizl/RingMoE).

The released pretraining code (``ringmoe_framework``) is not a plain Swin V2
in every detail, and its weights only reproduce its features when the same
operations run. This variant of :class:`RingMoE` keeps every parameter name
of the contract and changes only what the official modules compute:

- attention: the official ``SwinTransformerV2Block`` uses post-norm blocks
  (like Swin V2) but the V1 window attention: scaled dot product plus a learned
  relative position bias table (``WindowAttention`` in
  ``models/layers/attention.py``), no cosine attention, no logit scale, no
  continuous position bias MLP. Each block's ``attn.w_msa`` is therefore
  mmpretrain's ``WindowMSA`` (``qkv``, ``proj``, ``relative_position_bias_table``).
- window size per stage: the official blocks shrink the window to the feature
  map, and stop shifting, where the map is not larger than the window (at
  192 px with window 12: windows 12, 12, 12, 6; stages 2 and 3 unshifted).
  Pass the per-stage list as ``window_size`` with ``pad_small_map=False`` to
  reproduce that (``official_window_sizes`` computes it).
- LayerNorm epsilons: 1e-6 in blocks, patch embeddings and the final norm,
  1e-4 in patch merging.
- experts: MindSpore's ``nn.GELU`` (tanh approximation) after the first
  projection of every expert.
- gates: the official router renormalises the kept top-k gate values to sum
  to one (``combine / (sum + 1e-9)``), so a top-1 expert output enters with
  weight 1; there is no noisy gating (``noisy_gating`` defaults to False).

Numbers still differ from the Ascend run by its float16 matmuls.
"""
import torch.nn as nn
from mmpretrain.models.utils import WindowMSA

from mmringmoe.registry import MODELS
from ..layers.rmoe import NoisyTopKRouter, RMoE
from .ringmoe import RingMoE

BLOCK_NORM_EPS = 1e-6
MERGING_NORM_EPS = 1e-4


def official_window_sizes(window_size: int, img_size: int = 192, patch_size: int = 4,
                          num_stages: int = 4) -> list:
    """Window per stage as the official blocks set it for ``img_size`` inputs."""
    res = img_size // patch_size
    sizes = []
    for _ in range(num_stages):
        sizes.append(min(window_size, res))
        res //= 2
    return sizes


class RenormalizedTopKRouter(NoisyTopKRouter):
    """Top-k router whose kept gate values are renormalised to sum to one."""

    def forward(self, x):
        probs, gates, idx = super().forward(x)
        return probs, gates / (gates.sum(dim=-1, keepdim=True) + 1e-9), idx


@MODELS.register_module()
class RingMoEMindSpore(RingMoE):
    """:class:`RingMoE` computing what the official MindSpore model computes.

    Takes the arguments of :class:`RingMoE`; ``noisy_gating`` defaults to
    False and ``pad_small_map`` to False (the official behaviour on small maps).
    Checkpoints written by ``tools/model_converters/mindspore_to_mmringmoe.py``
    record the exact arguments under ``meta['backbone']``.
    """

    def __init__(self, *args, noisy_gating: bool = False, pad_small_map: bool = False,
                 **kwargs):
        super().__init__(*args, noisy_gating=noisy_gating, pad_small_map=pad_small_map,
                         **kwargs)
        for i, stage in enumerate(self.stages):
            window = self.window_sizes[i]
            for block in stage.blocks:
                old = block.attn.w_msa
                block.attn.w_msa = WindowMSA(
                    embed_dims=old.embed_dims, window_size=(window, window),
                    num_heads=old.num_heads)
                block.norm1.eps = BLOCK_NORM_EPS
                block.norm2.eps = BLOCK_NORM_EPS
                self._official_ffn(block.ffn)
            if stage.downsample is not None and stage.downsample.norm is not None:
                stage.downsample.norm.eps = MERGING_NORM_EPS
        for embed in self.patch_embed.values():
            if embed.norm is not None:
                embed.norm.eps = BLOCK_NORM_EPS
        for i in self.out_indices:
            norm = getattr(self, f'norm{i}')
            if isinstance(norm, nn.LayerNorm):
                norm.eps = BLOCK_NORM_EPS

    @staticmethod
    def _tanh_gelu(ffn):
        # mmcv FFN: layers[0] = Sequential(Linear, activation, Dropout)
        ffn.layers[0][1] = nn.GELU(approximate='tanh')

    def _official_ffn(self, ffn):
        if not isinstance(ffn, RMoE):
            self._tanh_gelu(ffn)
            return
        if hasattr(ffn, 'shared_expert'):
            self._tanh_gelu(ffn.shared_expert)
        if hasattr(ffn, 'collab_experts'):
            ffn.collab_experts.act = nn.GELU(approximate='tanh')
            ffn.collab_router = self._renormalized(ffn.collab_router)
        if hasattr(ffn, 'specialized_experts'):
            for m in list(ffn.specialized_experts):
                ffn.specialized_experts[m].act = nn.GELU(approximate='tanh')
                ffn.specialized_routers[m] = self._renormalized(ffn.specialized_routers[m])

    @staticmethod
    def _renormalized(router: NoisyTopKRouter) -> RenormalizedTopKRouter:
        new = RenormalizedTopKRouter(router.gate.in_features, router.num_experts,
                                     router.top_k, router.noise is not None,
                                     total_experts=router.total_experts)
        new.to(router.gate.weight.device)
        if not router.gate.weight.is_meta:
            new.load_state_dict(router.state_dict())
        return new
