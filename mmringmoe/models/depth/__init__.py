from .binsformer_head import BinsFormerHead, bins_to_depth_centres
from .depth_estimator import MoEDepthEstimator

__all__ = ['BinsFormerHead', 'bins_to_depth_centres', 'MoEDepthEstimator']
