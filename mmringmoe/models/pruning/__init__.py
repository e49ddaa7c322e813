"""Shrinking a pretrained RingMoE (paper Sec. 3.4, Appendix B.4).

Library functions behind ``tools/model_converters``; they work on backbone
state dicts (meta tensors included), never on the files themselves.
"""
from .checkpoint import (backbone_cfg, backbone_kwargs, check_output_path,
                         count_params, describe, format_count, load_checkpoint,
                         print_counts, save_checkpoint)
from .decompose import extract_modalities
from .expert_pruning import prune_by_usage, prune_collab_experts, select_experts
from .export import from_mmpretrain, mmpretrain_kwargs, to_mmpretrain
from .merging import merge_experts, merge_layer, truncate
from .upcycling import upcycle
from .usage import (check_usage, load_usage, plot_usage, save_usage,
                    usage_from_stats)

__all__ = [
    'backbone_cfg', 'backbone_kwargs', 'check_output_path', 'count_params', 'describe',
    'format_count', 'load_checkpoint', 'print_counts', 'save_checkpoint',
    'extract_modalities', 'prune_by_usage', 'prune_collab_experts',
    'select_experts', 'from_mmpretrain', 'mmpretrain_kwargs', 'to_mmpretrain',
    'merge_experts', 'merge_layer', 'truncate', 'upcycle', 'check_usage',
    'load_usage', 'plot_usage', 'save_usage', 'usage_from_stats'
]
