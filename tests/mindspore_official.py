"""Test-side model of the official MindSpore RingMoE checkpoint (HanboBizl/RingMoE).

Written from the official code, independently of the converter:
``official_params`` lists what ``mindspore.save_checkpoint`` stores for a
``SimMIM_Moe`` (``encoder`` = ``SwinTransformerV2ForSimMIM_Moe``, four
``decoder_i``), with the official shapes and layouts; ``write_ckpt`` writes
protobuf records the way MindSpore does (checkpoint.proto). The NumPy
functions compute layers the way the official MindSpore cells do.
"""
import math
from collections import OrderedDict

import numpy as np

IN_CH = (3, 8, 3, 4)        # patch_embed0..3: opt, SAR-L1, SAR-L2 (replicated band), MS
DEC_CH = (3, 8, 3, 4)       # decoder_0..3
STRIDE = 32

SMALL = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window=4,
             img=64, patch=4, mlp_ratio=4, n_spec=2, n_cross=3)


def stage_windows(a):
    """(resolution, window, shifts?) per stage as SwinTransformerV2Block sets them."""
    out, res = [], a['img'] // a['patch']
    for _ in a['depths']:
        if res <= a['window']:
            out.append((res, res, False))
        else:
            out.append((res, a['window'], True))
        res //= 2
    return out


def official_rel_index(w):
    coords = np.stack(np.meshgrid(np.arange(w), np.arange(w), indexing='ij')).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    rel[:, :, 0] += w - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1).reshape(-1).astype(np.int32)


def official_attn_mask(res, w, shift):
    img = np.zeros((1, res, res, 1))
    cnt = 0
    for h in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
        for ww in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
            img[:, h, ww, :] = cnt
            cnt += 1
    x = img.reshape(1, res // w, w, res // w, w, 1).transpose(0, 1, 3, 2, 4, 5).reshape(-1, w * w)
    m = x[:, np.newaxis] - x[:, :, np.newaxis]
    m = np.expand_dims(np.expand_dims(m, 1), 0)
    return np.where(m == 0, 0., -100.).astype(np.float32)


def official_params(a=SMALL, seed=0, with_training_state=True):
    rng = np.random.default_rng(seed)

    def w(*shape, std=0.2):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def ln(n):
        return (1 + w(n, std=0.1)), w(n, std=0.1)

    C, p = a['embed_dims'], a['patch']
    out = OrderedDict()
    e = 'encoder.'
    out[e + 'mask_token'] = w(1, 1, C)
    for i, cin in enumerate(IN_CH):
        out[f'{e}patch_embed{i}.projection.weight'] = w(C, cin, p, p)
        out[f'{e}patch_embed{i}.projection.bias'] = w(C)
        out[f'{e}patch_embed{i}.norm.gamma'], out[f'{e}patch_embed{i}.norm.beta'] = ln(C)
    out[f'{e}patch_embed.projection.weight'] = w(C, 3, p, p)
    out[f'{e}patch_embed.projection.bias'] = w(C)
    out[f'{e}patch_embed.norm.gamma'], out[f'{e}patch_embed.norm.beta'] = ln(C)
    for i, (depth, heads, (res, win, shifts)) in enumerate(
            zip(a['depths'], a['num_heads'], stage_windows(a))):
        d = C * 2**i
        hid = int(d * a['mlp_ratio'])
        for j in range(depth):
            b = f'{e}layers.{i}.blocks.{j}.'
            if shifts and j % 2 == 1:
                out[b + 'attention_mask'] = official_attn_mask(res, win, win // 2)
            out[b + 'norm1.gamma'], out[b + 'norm1.beta'] = ln(d)
            out[b + 'attn.relative_position_bias.relative_position_bias_table'] = \
                w((2 * win - 1)**2, heads)
            out[b + 'attn.relative_position_bias.relative_position_index'] = official_rel_index(win)
            for n in 'qkv':
                out[b + f'attn.{n}.weight'] = w(d, d, std=1 / math.sqrt(d))
                out[b + f'attn.{n}.bias'] = w(d)
            out[b + 'attn.proj.weight'] = w(d, d, std=1 / math.sqrt(d))
            out[b + 'attn.proj.bias'] = w(d)
            out[b + 'norm2.gamma'], out[b + 'norm2.beta'] = ln(d)
            for name, n_exp in [(f'special_ffn.{k}', a['n_spec']) for k in range(4)] + \
                               [('cross_ffn', a['n_cross'])]:
                out[b + f'mlp.{name}.mapping.weight'] = w(n_exp, d, hid, std=1 / math.sqrt(d))
                out[b + f'mlp.{name}.mapping.bias'] = w(1, n_exp, 1, hid)
                out[b + f'mlp.{name}.projection.weight'] = w(n_exp, hid, d, std=1 / math.sqrt(hid))
                out[b + f'mlp.{name}.projection.bias'] = w(1, n_exp, 1, d)
                if name != 'cross_ffn':
                    k = name.split('.')[1]
                    out[b + f'mlp.special_router.{k}.dense.weight'] = w(a['n_spec'], d)
            out[b + 'mlp.cross_router.dense.weight'] = w(a['n_cross'], d)
            out[b + 'mlp.public_ffn.mapping.weight'] = w(d, hid, std=1 / math.sqrt(d))
            out[b + 'mlp.public_ffn.mapping.bias'] = w(hid)
            out[b + 'mlp.public_ffn.projection.weight'] = w(hid, d, std=1 / math.sqrt(hid))
            out[b + 'mlp.public_ffn.projection.bias'] = w(d)
        if i < len(a['depths']) - 1:
            out[f'{e}layers.{i}.downsample.reduction.weight'] = w(2 * d, 4 * d, std=1 / math.sqrt(4 * d))
            out[f'{e}layers.{i}.downsample.norm.gamma'], out[f'{e}layers.{i}.downsample.norm.beta'] = \
                ln(2 * d)
    last = C * 2**(len(a['depths']) - 1)
    out[e + 'norm.gamma'], out[e + 'norm.beta'] = ln(last)
    for i, c in enumerate(DEC_CH):
        out[f'decoder_{i}.weight'] = w(STRIDE**2 * c, last, 1, 1, std=1 / math.sqrt(last))
        out[f'decoder_{i}.bias'] = w(STRIDE**2 * c)
    if with_training_state:
        out['adam_m.encoder.norm.gamma'] = np.zeros(last, np.float32)
        out['adam_v.encoder.norm.gamma'] = np.zeros(last, np.float32)
        out['global_step'] = np.array([1000], np.int32)
        out['learning_rate'] = np.array(2.5e-4, np.float32)
    return out


# ------------------------------------------------- .ckpt writer (checkpoint.proto)
_TYPES = {'float32': 'Float32', 'float16': 'Float16', 'int32': 'Int32', 'int64': 'Int64',
          'uint16': 'BFloat16'}


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def to_bfloat16_bits(params):
    """float32 entries -> their BFloat16 bit patterns (uint16), truncating."""
    return OrderedDict((k, (v.view(np.uint32) >> 16).astype(np.uint16) if v.dtype == np.float32 else v)
                       for k, v in params.items())


def write_ckpt(path, params, slice_bytes=1 << 29):
    """Like mindspore.save_checkpoint: one serialised Checkpoint{value} per record.

    uint16 arrays are written as BFloat16 bit patterns.
    """
    with open(path, 'wb') as f:
        for name, arr in params.items():
            arr = np.asarray(arr)
            data = arr.tobytes(order='C')
            dims = b''.join(_varint(1 << 3) + _varint(d) for d in (arr.shape or (0,)))
            for s in range(0, max(len(data), 1), slice_bytes):
                tensor = dims + _ld(2, _TYPES[arr.dtype.name].encode()) + _ld(3, data[s:s + slice_bytes])
                f.write(_ld(1, _ld(1, name.encode()) + _ld(2, tensor)))


# --------------------------------------------------- official computations
def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu)**2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def gelu_tanh(x):  # mindspore nn.GELU(approximate=True)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def patch_embed(x, wt, bias, g, beta, p=4):
    """Conv2d(k=s=p) -> reshape (b, c, h*w) -> transpose -> LayerNorm(eps 1e-6)."""
    B, Cin, H, W = x.shape
    patches = x.reshape(B, Cin, H // p, p, W // p, p)
    y = np.einsum('bchpwq,ocpq->bohw', patches, wt) + bias[None, :, None, None]
    y = y.reshape(B, y.shape[1], -1).transpose(0, 2, 1)
    return layer_norm(y, g, beta, 1e-6)


def window_attention(x, P, b, heads, mask=None):
    """WindowAttention.construct: separate q/k/v Linear (x @ W^T + b), scaled, + bias, softmax."""
    B, N, C = x.shape
    q = x @ P[b + 'attn.q.weight'].T + P[b + 'attn.q.bias']
    k = x @ P[b + 'attn.k.weight'].T + P[b + 'attn.k.bias']
    v = x @ P[b + 'attn.v.weight'].T + P[b + 'attn.v.bias']
    hd = C // heads
    q = q.reshape(B, N, heads, hd).transpose(0, 2, 1, 3)
    k = k.reshape(B, N, heads, hd).transpose(0, 2, 3, 1)
    v = v.reshape(B, N, heads, hd).transpose(0, 2, 1, 3)
    attn = (q * hd**-0.5) @ k
    table = P[b + 'attn.relative_position_bias.relative_position_bias_table']
    index = P[b + 'attn.relative_position_bias.relative_position_index']
    bias = table[index].reshape(N, N, -1).transpose(2, 0, 1)[None]
    attn = attn + bias
    if mask is not None:
        nw = mask.shape[1]
        attn = (attn.reshape(B // nw, nw, heads, N, N) + mask).reshape(-1, heads, N, N)
    attn = np.exp(attn - attn.max(-1, keepdims=True))
    attn = attn / attn.sum(-1, keepdims=True)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(B, N, C)
    return out @ P[b + 'attn.proj.weight'].T + P[b + 'attn.proj.bias']


def router(x, wt):
    """Router: fp32 Dense (no bias) -> softmax -> argmax; top-1 combine weight g/(g+1e-9)."""
    logits = x.astype(np.float32) @ wt.T
    prob = np.exp(logits - logits.max(-1, keepdims=True))
    prob = prob / prob.sum(-1, keepdims=True)
    idx = prob.argmax(-1)
    gate = prob.max(-1)
    return prob, idx, gate / (gate + 1e-9)


def batched_experts(x, w1, b1, w2, b2):
    """MLP with expert_num=E: x (E, T, C) @ (E, C, H) + (1, E, 1, H) -> gelu -> @ (E, H, C) + bias."""
    h = gelu_tanh(np.matmul(x, w1) + b1[0])
    return np.matmul(h, w2) + b2[0]


def public_expert(x, P, b):
    h = gelu_tanh(x @ P[b + 'mlp.public_ffn.mapping.weight'] + P[b + 'mlp.public_ffn.mapping.bias'])
    return h @ P[b + 'mlp.public_ffn.projection.weight'] + P[b + 'mlp.public_ffn.projection.bias']


def moe_modal_one(x, P, b, k):
    """Moe_modal on tokens of official modality k (no capacity drop): special + cross + public."""
    out = public_expert(x, P, b)
    for ffn, rt in ((f'special_ffn.{k}', f'special_router.{k}'), ('cross_ffn', 'cross_router')):
        _, idx, comb = router(x, P[b + f'mlp.{rt}.dense.weight'])
        w1, b1 = P[b + f'mlp.{ffn}.mapping.weight'], P[b + f'mlp.{ffn}.mapping.bias']
        w2, b2 = P[b + f'mlp.{ffn}.projection.weight'], P[b + f'mlp.{ffn}.projection.bias']
        for e in range(w1.shape[0]):
            sel = idx == e
            if sel.any():
                y = batched_experts(x[sel][None], w1[e:e + 1], b1[:, e:e + 1], w2[e:e + 1], b2[:, e:e + 1])
                out[sel] += comb[sel, None] * y[0]
    return out


def patch_merging(x, P, name, H, W):
    """PatchMerging.construct: reshape (b, h/2, 2, w/2, 2, c), transpose (0,1,3,4,2,5), Linear, LN(1e-4)."""
    B, L, C = x.shape
    x = x.reshape(B, H // 2, 2, W // 2, 2, C).transpose(0, 1, 3, 4, 2, 5).reshape(B, -1, 4 * C)
    x = x @ P[name + 'reduction.weight'].T
    return layer_norm(x, P[name + 'norm.gamma'], P[name + 'norm.beta'], 1e-4)


def decoder(z, wt, bias, r=STRIDE):
    """Conv2d 1x1 then the official DepthToSapce: reshape (N, r, r, c, H, W), transpose (0,3,4,1,5,2)."""
    y = np.einsum('bchw,oc->bohw', z, wt[:, :, 0, 0]) + bias[None, :, None, None]
    N, Cr, H, W = y.shape
    c = Cr // (r * r)
    return y.reshape(N, r, r, c, H, W).transpose(0, 3, 4, 1, 5, 2).reshape(N, c, H * r, W * r)
