"""A toy regression model, data set and metric in the mmringmoe scope, for
tests of the train/test tools that need no toolbox: fast and deterministic
apart from dropout, which exercises the random state saved on resume."""
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from mmringmoe.registry import DATASETS, METRICS, MODELS


@MODELS.register_module(force=True)
class ToyRegressor(BaseModel):

    def __init__(self, in_dim=8, hidden=16, dropout=0.5, init_cfg=None,
                 data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, inputs, targets=None, mode='tensor'):
        out = self.net(inputs).squeeze(-1)
        if mode == 'loss':
            return {'loss': F.mse_loss(out, targets)}
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(out, targets)]
        return out


@DATASETS.register_module(force=True)
class ToyDataset(Dataset):
    metainfo = dict(classes=('value', ))

    def __init__(self, length=32, in_dim=8, seed=0, jitter=0.0):
        self.jitter = jitter
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(length, in_dim, generator=g)
        self.y = self.x.sum(1) + 0.1 * torch.randn(length, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        # a random augmentation drawn from the global torch generator, as
        # transforms in the main process (num_workers=0) do
        x = self.x[idx]
        if self.jitter:
            x = x + self.jitter * torch.randn(x.shape)
        return dict(inputs=x, targets=self.y[idx])


@METRICS.register_module(force=True)
class ToyMSE(BaseMetric):

    def process(self, data_batch, data_samples):
        for s in data_samples:
            self.results.append(float((s['pred'] - s['target'])**2))

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))
