"""Converters from other frameworks' RingMoE checkpoints."""
from .mindspore_ckpt import (MSTensor, CheckpointFormatError, read_mindspore_ckpt,
                             write_mindspore_ckpt)
from .ringmoe_mindspore import (ConversionError, ShapeMismatchError, convert_official,
                                format_report, to_official)

__all__ = ['MSTensor', 'CheckpointFormatError', 'read_mindspore_ckpt', 'write_mindspore_ckpt',
           'ConversionError', 'ShapeMismatchError', 'convert_official', 'format_report',
           'to_official']
