"""BinsFormer head (Li et al., "BinsFormer: Revisiting Adaptive Bins for
Monocular Depth Estimation") for mmseg's ``DepthEstimator`` (paper B.5.7).

Depth is classification-regression over adaptive bins:

* a pixel decoder (mmdet's ``MSDeformAttnPixelDecoder``) turns the backbone
  pyramid into per-pixel embeddings (1/4 resolution) and three enhanced
  multi-scale maps;
* a Mask2Former-style transformer decoder (mmdet's layers, no attention mask)
  refines ``num_bins`` bin queries plus one scene query, attending the three
  scales in round-robin;
* after every decoder layer each bin query gives a bin width (MLP, softmax
  over bins) and a per-pixel embedding whose dot product with the pixel
  embeddings, softmaxed over bins, gives the bin probabilities; depth is the
  probability-weighted sum of bin centres;
* SigLoss on the last layer plus weighted auxiliary SigLoss on chosen
  intermediate layers (deep supervision); the scene query is classified
  when scene labels exist (``num_scene_classes > 0``), and otherwise still
  takes part in self-attention as a global context token.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.layers import SinePositionalEncoding
from mmdet.models.layers.transformer import Mask2FormerTransformerDecoder
from mmdet.registry import MODELS as DET_MODELS
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS as SEG_MODELS

from mmringmoe.registry import MODELS


def bins_to_depth_centres(bin_logits, min_depth, max_depth, norm='softmax',
                          eps=0.1, min_width=1e-4):
    """Bin logits ``(B, N)`` -> bin edges ``(B, N+1)`` and centres ``(B, N)``.

    Widths are normalised to sum to ``max_depth - min_depth`` and accumulated
    from ``min_depth``, so edges run from ``min_depth`` to ``max_depth`` and
    the centres are strictly increasing inside that interval. Every width is
    kept above ``min_width`` of the range: a saturated softmax otherwise gives
    widths below float32 resolution, i.e. coinciding centres.
    """
    if not max_depth > min_depth:
        raise ValueError(f'max_depth ({max_depth}) must exceed min_depth '
                         f'({min_depth})')
    if norm == 'softmax':
        widths = bin_logits.softmax(dim=1)
    elif norm == 'linear':
        widths = torch.relu(bin_logits) + eps
    elif norm == 'sigmoid':
        widths = torch.sigmoid(bin_logits)
    else:
        raise ValueError(f'unknown bins norm {norm!r}')
    widths = widths / widths.sum(dim=1, keepdim=True)
    widths = (widths + min_width) / (1 + min_width * widths.shape[1])
    widths = (max_depth - min_depth) * widths
    edges = torch.cumsum(F.pad(widths, (1, 0), value=min_depth), dim=1)
    centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
    return edges, centres


class _MLP(nn.Sequential):

    def __init__(self, in_dim, hidden, out_dim, num_layers=3):
        layers = []
        dims = [in_dim] + [hidden] * (num_layers - 1)
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], out_dim))
        super().__init__(*layers)


@MODELS.register_module()
class BinsFormerHead(BaseModule):
    """BinsFormer decode head.

    Args:
        in_channels (list[int]): backbone stage widths.
        strides (list[int]): their output strides.
        feat_channels (int): pixel decoder / query width.
        num_bins (int): bin queries (BinsFormer: 64).
        min_depth, max_depth (float): depth range covered by the bins.
        pixel_decoder (dict): mmdet ``MSDeformAttnPixelDecoder`` config
            (in/feat/out channels and strides are filled in here).
        transformer_decoder (dict): mmdet ``Mask2FormerTransformerDecoder``
            config (``num_layers``, ``layer_cfg``).
        with_scene_query (bool): add the scene (classification) query.
        num_scene_classes (int): >0 adds the scene classifier and its
            cross-entropy loss on ``data_sample.metainfo['scene_label']``.
        loss_decode (dict): depth loss on every supervised layer (mmseg
            ``SiLogLoss``).
        aux_loss_layers / aux_loss_weights: intermediate decoder layers (0
            based) that get a weighted auxiliary depth loss; the last layer
            is always supervised with weight 1.
        loss_scene_weight (float): weight of the scene classification loss.
        bins_norm (str): 'softmax' (default), 'linear' or 'sigmoid'.
    """

    def __init__(self,
                 in_channels,
                 strides=(4, 8, 16, 32),
                 feat_channels=256,
                 num_bins=64,
                 min_depth=1e-3,
                 max_depth=10.,
                 pixel_decoder=None,
                 transformer_decoder=None,
                 with_scene_query=True,
                 num_scene_classes=0,
                 loss_decode=dict(type='SiLogLoss', loss_weight=10.),
                 aux_loss_layers=(2, 5),
                 aux_loss_weights=(0.25, 0.5),
                 loss_scene_weight=0.1,
                 bins_norm='softmax',
                 align_corners=False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(aux_loss_layers) != len(aux_loss_weights):
            raise ValueError('aux_loss_layers and aux_loss_weights differ in '
                             'length')
        self.in_channels = list(in_channels)
        self.num_bins = num_bins
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.bins_norm = bins_norm
        self.align_corners = align_corners
        # attributes mmseg's EncoderDecoder / DepthEstimator read from a head
        self.num_classes = 1
        self.out_channels = 1
        self.aux_loss_layers = tuple(aux_loss_layers)
        self.aux_loss_weights = tuple(aux_loss_weights)
        self.loss_scene_weight = loss_scene_weight

        pixel_decoder = dict(pixel_decoder or {})
        pixel_decoder.setdefault('type', 'MSDeformAttnPixelDecoder')
        if '.' not in pixel_decoder['type']:
            # built under the runner's default scope (mmseg) otherwise
            pixel_decoder['type'] = 'mmdet.' + pixel_decoder['type']
        pixel_decoder.update(in_channels=self.in_channels, strides=strides,
                             feat_channels=feat_channels,
                             out_channels=feat_channels)
        self.pixel_decoder = DET_MODELS.build(pixel_decoder)
        self.num_levels = pixel_decoder.get('num_outs', 3)

        transformer_decoder = dict(transformer_decoder or {})
        transformer_decoder.pop('type', None)
        self.transformer_decoder = Mask2FormerTransformerDecoder(
            **transformer_decoder)
        self.num_layers = self.transformer_decoder.num_layers
        for idx in self.aux_loss_layers:
            if not 0 <= idx < self.num_layers - 1:
                raise ValueError(f'aux loss layer {idx} outside the '
                                 f'{self.num_layers - 1} intermediate layers')
        dims = self.transformer_decoder.embed_dims
        if dims != feat_channels:
            raise ValueError(f'decoder embed_dims {dims} != feat_channels '
                             f'{feat_channels}')
        self.decoder_pos = SinePositionalEncoding(num_feats=dims // 2,
                                                  normalize=True)
        self.level_embed = nn.Embedding(self.num_levels, dims)

        self.with_scene_query = with_scene_query
        num_queries = num_bins + int(with_scene_query)
        self.query_feat = nn.Embedding(num_queries, dims)
        self.query_embed = nn.Embedding(num_queries, dims)
        self.bins_embed = _MLP(dims, dims, 1)
        self.pixel_embed = _MLP(dims, dims, feat_channels)
        self.num_scene_classes = num_scene_classes
        if num_scene_classes > 0:
            if not with_scene_query:
                raise ValueError('num_scene_classes > 0 needs the scene query')
            self.scene_cls = nn.Linear(dims, num_scene_classes)
        self.loss_decode = SEG_MODELS.build(loss_decode)

    # ---------------------------------------------------------- forward
    def _predict_layer(self, query, pixel_feats):
        query = self.transformer_decoder.post_norm(query)
        bin_q = query[:, :self.num_bins]
        _, centres = bins_to_depth_centres(
            self.bins_embed(bin_q).squeeze(-1), self.min_depth,
            self.max_depth, self.bins_norm)
        logits = torch.einsum('bqc,bchw->bqhw', self.pixel_embed(bin_q),
                              pixel_feats)
        prob = logits.softmax(dim=1)
        depth = (prob * centres[:, :, None, None]).sum(dim=1, keepdim=True)
        scene = (self.scene_cls(query[:, self.num_bins])
                 if self.num_scene_classes > 0 else None)
        return depth, centres, scene

    def forward(self, feats):
        """Returns per-layer lists of depth maps (B, 1, H/4, W/4), bin
        centres (B, N) and scene logits (or None)."""
        pixel_feats, mlvl = self.pixel_decoder(list(feats))
        batch = pixel_feats.shape[0]
        memories, positions = [], []
        for lvl, feat in enumerate(mlvl):
            mask = feat.new_zeros((batch, ) + feat.shape[-2:], dtype=torch.bool)
            pos = self.decoder_pos(mask).flatten(2).transpose(1, 2)
            memories.append(feat.flatten(2).transpose(1, 2))
            positions.append(pos + self.level_embed.weight[lvl][None, None])
        query = self.query_feat.weight[None].expand(batch, -1, -1)
        query_pos = self.query_embed.weight[None].expand(batch, -1, -1)
        depths, centres, scenes = [], [], []
        for i, layer in enumerate(self.transformer_decoder.layers):
            lvl = i % len(memories)
            query = layer(query=query, key=memories[lvl], value=memories[lvl],
                          query_pos=query_pos, key_pos=positions[lvl],
                          cross_attn_mask=None, key_padding_mask=None)
            d, c, s = self._predict_layer(query, pixel_feats)
            depths.append(d)
            centres.append(c)
            scenes.append(s)
        return depths, centres, scenes

    # ---------------------------------------------------------- mmseg API
    def loss(self, inputs, batch_data_samples, train_cfg=None):
        depths, _, scenes = self.forward(inputs)
        gt = torch.stack([s.gt_depth_map.data for s in batch_data_samples])
        losses = dict()

        def depth_loss(pred):
            pred = resize(pred, size=gt.shape[2:], mode='bilinear',
                          align_corners=self.align_corners, warning=False)
            return self.loss_decode(pred, gt)

        losses['loss_depth'] = depth_loss(depths[-1])
        for idx, weight in zip(self.aux_loss_layers, self.aux_loss_weights):
            losses[f'loss_depth_aux{idx}'] = weight * depth_loss(depths[idx])
        if self.num_scene_classes > 0:
            labels = [s.metainfo.get('scene_label') for s in
                      batch_data_samples]
            if all(label is not None for label in labels):
                target = torch.as_tensor(labels, device=gt.device)
                supervised = [len(scenes) - 1] + list(self.aux_loss_layers)
                losses['loss_scene'] = self.loss_scene_weight * sum(
                    F.cross_entropy(scenes[i], target) for i in supervised)
        return losses

    def predict(self, inputs, batch_img_metas, test_cfg=None):
        depths, _, _ = self.forward(inputs)
        meta = batch_img_metas[0]
        if isinstance(meta['img_shape'], torch.Size):
            size = meta['img_shape']
        elif 'pad_shape' in meta:
            size = meta['pad_shape'][:2]
        else:
            size = meta['img_shape']
        return resize(depths[-1], size=size, mode='bilinear',
                      align_corners=self.align_corners, warning=False)
