"""Few-shot scene classification with a relation head (Sung et al.,
RelationNet, CVPR 2018) on frozen RingMoE features (paper B.5.8)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmringmoe.registry import MODELS
from .frozen_backbone import FrozenFeatureExtractor


@MODELS.register_module()
class RelationModule(nn.Module):
    """Learned similarity of a (class prototype, query) feature-map pair:
    two conv-BN-ReLU-maxpool blocks on the channel concatenation, then two
    FC layers and a sigmoid (RelationNet). Global average pooling before the
    FCs makes it independent of the feature-map size."""

    def __init__(self, in_channels, channels=64, hidden=8):
        super().__init__()

        def block(c_in):
            return nn.Sequential(
                nn.Conv2d(c_in, channels, 3, padding=1),
                nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True))

        self.convs = nn.Sequential(block(2 * in_channels), block(channels))
        self.fc = nn.Sequential(nn.Linear(channels, hidden),
                                nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, prototypes, queries):
        """prototypes (N, C, h, w), queries (M, C, h, w) -> scores (M, N)."""
        n, m = prototypes.shape[0], queries.shape[0]
        pairs = torch.cat([
            prototypes[None].expand(m, -1, -1, -1, -1),
            queries[:, None].expand(-1, n, -1, -1, -1)], dim=2).flatten(0, 1)
        x = F.adaptive_avg_pool2d(self.convs(pairs), 1).flatten(1)
        return torch.sigmoid(self.fc(x)).view(m, n)


@MODELS.register_module()
class RelationNetClassifier(BaseModel):
    """Episodes in, query labels out.

    Class prototypes are the sum of the class's support feature maps (as in
    RelationNet for K > 1). Loss: MSE between relation scores and the
    one-hot query labels. Only the relation module learns.
    """

    def __init__(self, backbone, feat_indices=(-1, ), in_channels=3584,
                 relation_channels=64, relation_hidden=8, frozen=True,
                 data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or dict(
            type='mmringmoe.EpisodeDataPreProcessor'), init_cfg=init_cfg)
        self.extractor = FrozenFeatureExtractor(backbone, feat_indices, frozen)
        self.relation = RelationModule(in_channels, relation_channels,
                                       relation_hidden)

    def _scores(self, support, query, support_labels, num_ways):
        fs = self.extractor(support)
        fq = self.extractor(query)
        protos = fs.new_zeros((num_ways, ) + fs.shape[1:]).index_add_(
            0, support_labels, fs)
        return self.relation(protos, fq)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        scores = [
            self._scores(s, q, ds.support_labels.to(s.device),
                         int(ds.support_labels.max()) + 1)
            for s, q, ds in zip(inputs['support'], inputs['query'],
                                data_samples)]
        if mode == 'tensor':
            return scores
        if mode == 'loss':
            loss = sum(
                F.mse_loss(sc, F.one_hot(ds.query_labels.to(sc.device),
                                         sc.shape[1]).float())
                for sc, ds in zip(scores, data_samples)) / len(scores)
            return dict(loss_relation=loss)
        if mode == 'predict':
            for sc, ds in zip(scores, data_samples):
                ds.pred_score = sc.detach()
                ds.pred_label = sc.argmax(dim=1).detach()
            return data_samples
        raise ValueError(f'invalid mode {mode!r}')
