from .data_preprocessor import EpisodeDataPreProcessor
from .frozen_backbone import FrozenFeatureExtractor
from .prototype_segmentor import (PrototypeFewShotSegmentor,
                                  masked_average_pooling)
from .relation_net import RelationModule, RelationNetClassifier

__all__ = ['EpisodeDataPreProcessor', 'FrozenFeatureExtractor',
           'PrototypeFewShotSegmentor', 'masked_average_pooling',
           'RelationModule', 'RelationNetClassifier']
