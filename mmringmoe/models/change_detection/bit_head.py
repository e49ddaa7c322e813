"""BIT head (Chen et al., "Remote Sensing Image Change Detection with
Transformers", TGRS 2021), written on mmseg's ``BaseDecodeHead``.

Per date: multi-level backbone features -> one 1/4-resolution map of
``channels`` (BIT's ``conv_pred``) -> semantic tokenizer (spatial attention
pools the map into ``token_len`` tokens). The tokens of both dates are
concatenated, given a learned position embedding and passed through a
transformer encoder (context modelling across space-time); each date's pixel
features then query its own refined tokens in a transformer decoder. The
absolute difference of the two decoded maps is upsampled and classified.

BIT takes a single ResNet stage; a hierarchical RingMoE gives four, so each
selected level is projected to ``channels`` by a 1x1 conv, resized to the
finest selected level and summed before ``conv_pred``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize

from mmringmoe.registry import MODELS


class _MultiHeadAttention(nn.Module):
    """Attention with an inner width of ``heads * dim_head`` (BIT's layout)."""

    def __init__(self, dim, heads, dim_head, dropout=0.):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.proj = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def _split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, query, context):
        q = self._split(self.to_q(query))
        k, v = (self._split(t) for t in self.to_kv(context).chunk(2, dim=-1))
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).flatten(2)
        return self.proj(out)


class _FeedForward(nn.Sequential):

    def __init__(self, dim, hidden, dropout=0.):
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class _TransformerLayer(nn.Module):
    """Pre-norm residual block: (self- or cross-) attention, then FFN.

    In the decoder the pixel features are the queries and the tokens the
    keys/values; BIT normalises both with the same LayerNorm.
    """

    def __init__(self, dim, heads, dim_head, mlp_dim, dropout=0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _MultiHeadAttention(dim, heads, dim_head, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = _FeedForward(dim, mlp_dim, dropout)

    def forward(self, x, context=None):
        xn = self.norm1(x)
        cn = xn if context is None else self.norm1(context)
        x = x + self.attn(xn, cn)
        return x + self.ffn(self.norm2(x))


class SemanticTokenizer(nn.Module):
    """Pool a feature map into ``token_len`` tokens by spatial attention."""

    def __init__(self, channels, token_len):
        super().__init__()
        self.attn = nn.Conv2d(channels, token_len, kernel_size=1, bias=False)

    def forward(self, x):
        weights = self.attn(x).flatten(2).softmax(dim=-1)  # B, L, HW
        return weights @ x.flatten(2).transpose(1, 2)  # B, L, C


@MODELS.register_module()
class BITHead(BaseDecodeHead):
    """Bitemporal image transformer head.

    Args:
        token_len (int): semantic tokens per date (BIT: 4).
        enc_depth / dec_depth (int): transformer encoder / decoder layers
            (BIT_S4: 1 / 8).
        num_heads (int): attention heads (8).
        enc_dim_head / dec_dim_head (int): per-head width (64 / 8).
        mlp_ratio (int): FFN hidden = ``mlp_ratio * channels`` (BIT: 2).
        upsample_factor (int): the difference map is upsampled by this factor
            before the classifier (BIT: 4, i.e. back to input resolution for
            1/4 features).
    Other arguments as ``BaseDecodeHead``; use ``input_transform=
    'multiple_select'`` with ``in_index`` the levels to fuse.
    """

    def __init__(self, token_len=4, enc_depth=1, dec_depth=8, num_heads=8,
                 enc_dim_head=64, dec_dim_head=8, mlp_ratio=2,
                 upsample_factor=4, attn_dropout=0., **kwargs):
        kwargs.setdefault('input_transform', 'multiple_select')
        super().__init__(**kwargs)
        in_channels = (self.in_channels if isinstance(self.in_channels,
                                                      (list, tuple))
                       else [self.in_channels])
        c = self.channels
        self.lateral = nn.ModuleList(
            nn.Conv2d(ch, c, kernel_size=1) for ch in in_channels)
        self.conv_pred = ConvModule(c, c, 3, padding=1, norm_cfg=self.norm_cfg,
                                    act_cfg=self.act_cfg)
        self.tokenizer = SemanticTokenizer(c, token_len)
        self.token_pos = nn.Parameter(torch.randn(1, 2 * token_len, c))
        self.encoder = nn.ModuleList(
            _TransformerLayer(c, num_heads, enc_dim_head, mlp_ratio * c,
                              attn_dropout) for _ in range(enc_depth))
        self.decoder = nn.ModuleList(
            _TransformerLayer(c, num_heads, dec_dim_head, mlp_ratio * c,
                              attn_dropout) for _ in range(dec_depth))
        self.upsample_factor = upsample_factor
        self.classifier = ConvModule(c, c, 3, padding=1, norm_cfg=self.norm_cfg,
                                     act_cfg=self.act_cfg)

    def _date_features(self, feats):
        feats = self._transform_inputs(feats)
        if torch.is_tensor(feats):
            feats = [feats]
        size = feats[0].shape[2:]
        x = sum(
            resize(lat(f), size=size, mode='bilinear',
                   align_corners=self.align_corners)
            for lat, f in zip(self.lateral, feats))
        return self.conv_pred(x)

    def _decode(self, x, tokens):
        b, c, h, w = x.shape
        q = x.flatten(2).transpose(1, 2)
        for layer in self.decoder:
            q = layer(q, tokens)
        return q.transpose(1, 2).reshape(b, c, h, w)

    def forward(self, inputs):
        if not (isinstance(inputs, (list, tuple)) and len(inputs) == 2):
            raise ValueError('BITHead expects (features of date A, features '
                             'of date B); use it inside SiameseEncoderDecoder')
        xa = self._date_features(inputs[0])
        xb = self._date_features(inputs[1])
        tokens = torch.cat([self.tokenizer(xa), self.tokenizer(xb)], dim=1)
        tokens = tokens + self.token_pos
        for layer in self.encoder:
            tokens = layer(tokens)
        ta, tb = tokens.chunk(2, dim=1)
        diff = torch.abs(self._decode(xa, ta) - self._decode(xb, tb))
        if self.upsample_factor != 1:
            diff = F.interpolate(diff, scale_factor=self.upsample_factor,
                                 mode='bilinear',
                                 align_corners=self.align_corners)
        return self.cls_seg(self.classifier(diff))
