from .convpass import ConvpassAdapter, ConvpassRingMoE  # noqa: F401

__all__ = ['ConvpassAdapter', 'ConvpassRingMoE']
