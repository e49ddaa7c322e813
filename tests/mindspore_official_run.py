"""Run the authors' own MindSpore RingMoE cells on a small model (for
``tests/test_mindspore_official_code.py``; run by a Python that has MindSpore).

    python tests/mindspore_official_run.py --repo /path/to/RingMoE --out DIR [--fp32]

Builds ``SimMIM_Moe(SwinTransformerV2ForSimMIM_Moe(...))`` from a clone of
HanboBizl/RingMoE (imported from there, nothing of it is copied here), loads
the weights of ``mindspore_official.official_params(seed=7)``, saves it with
``mindspore.save_checkpoint`` (``DIR/official.ckpt``) and writes the encoder's
final features for a four-modality batch (``DIR/io.npz``).

What this needs to run on MindSpore 2.7+ on a CPU, none of which changes a
parameter or the op order:

- ``mindspore.parallel._transformer`` (used by the official code) was removed
  from MindSpore; the few classes it imports are re-created below with the same
  parameter names, shapes and ``construct`` (``_Linear``: ``x @ W`` with weight
  ``(E, in, out)`` / ``(out, in)``, biases ``(1, E, 1, out)``; ``_LayerNorm``:
  ``gamma``/``beta``), shard strategies dropped.
- older ``nn.Cell`` had a ``cast`` attribute the official block uses;
  ``MMConcat_4N.cat`` is commented out upstream; the CPU has no ``Roll``
  kernel and its ``BatchMatMul`` does not broadcast ``(1, E, T, C) x (E, C, H)``:
  each is supplied with an equivalent.
- ``--fp32`` turns the official float16 casts into float32, so that the
  comparison measures the conversion, not float16 rounding.
"""
import argparse
import math
import os
import os.path as osp
import sys
import types

import numpy as np


def _install_transformer_stand_ins(ms):
    from mindspore import Parameter, nn
    from mindspore.common.initializer import initializer
    import mindspore.common.dtype as mstype
    from mindspore.ops import functional as F
    from mindspore.ops import operations as P

    class OpParallelConfig:
        def __init__(self, data_parallel=1, model_parallel=1, **kw):
            self.data_parallel, self.model_parallel = data_parallel, model_parallel
            self.expert_parallel, self.pipeline_stage, self.vocab_emb_dp = 1, 1, True

    class MoEParallelConfig(OpParallelConfig):
        def __init__(self, data_parallel=1, model_parallel=1, expert_parallel=1, **kw):
            super().__init__(data_parallel, model_parallel)
            self.expert_parallel = expert_parallel

    class TransformerRecomputeConfig:
        def __init__(self, *a, **k):
            self.recompute = False

    class TransformerOpParallelConfig:
        def __init__(self, data_parallel=1, model_parallel=1, expert_parallel=1, pipeline_stage=1,
                     micro_batch_num=1, recompute=None, **kw):
            self.data_parallel, self.model_parallel = data_parallel, model_parallel
            self.expert_parallel, self.pipeline_stage = expert_parallel, pipeline_stage
            self.micro_batch_num, self.gradient_aggregation_group = micro_batch_num, 4
            self.recompute = recompute or TransformerRecomputeConfig()
            self.vocab_emb_dp = True
            self.moe_parallel_config = MoEParallelConfig(data_parallel, model_parallel, expert_parallel)
            self.dp_mp_config = OpParallelConfig(data_parallel, model_parallel)

    class MoEConfig:
        def __init__(self, expert_num=1, capacity_factor=1.1, aux_loss_factor=0.05,
                     num_experts_chosen=1, **kw):
            self.expert_num, self.capacity_factor = expert_num, capacity_factor
            self.aux_loss_factor, self.num_experts_chosen = aux_loss_factor, num_experts_chosen
            self.expert_group_size = None

    def calculate_expert_capacity(k, tokens_per_group, capacity_factor, expert_dim):
        return math.ceil(k * tokens_per_group * capacity_factor / expert_dim)

    class _Dropout(nn.Cell):
        def __init__(self, keep_prob=0.5, dtype=mstype.float32):
            super().__init__()

        def construct(self, x):
            return x

        def shard(self, strategy):
            return self

    class _LayerNorm(nn.Cell):
        def __init__(self, normalized_shape, eps=1e-5, param_init_type=mstype.float32,
                     is_self_defined=False):
            super().__init__()
            self.layer_norm = P.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)
            self.gamma = Parameter(initializer('ones', normalized_shape, param_init_type), name='gamma')
            self.beta = Parameter(initializer('zeros', normalized_shape, param_init_type), name='beta')

        def construct(self, x):
            return self.layer_norm(x, self.gamma, self.beta)[0]

        def shard(self, strategy):
            return self

    class _Linear(nn.Cell):
        def __init__(self, in_channels, out_channels, weight_init='normal', bias_init='zeros',
                     has_bias=True, activation=None, transpose_b=True, expert_num=1, outer_batch=1,
                     expert_group_size=None, param_init_type=mstype.float32,
                     compute_dtype=mstype.float16):
            super().__init__()
            self.in_channels, self.out_channels = in_channels, out_channels
            shape = [out_channels, in_channels] if transpose_b else [in_channels, out_channels]
            self.expert_num, self.outer_batch = expert_num, outer_batch
            self.expert_flag = expert_num > 1
            if self.expert_flag:
                shape = [expert_num] + shape
            self.weight = Parameter(initializer(weight_init, shape, param_init_type), name='weight')
            self.matmul = (P.BatchMatMul if self.expert_flag else P.MatMul)(transpose_b=transpose_b)
            self.has_bias, self.bias = has_bias, None
            if has_bias:
                bshape = [1, expert_num, 1, out_channels] if self.expert_flag else [out_channels]
                self.bias = Parameter(initializer(bias_init, bshape, param_init_type), name='bias')
                self.bias_add = P.Add()
            self.activation = (nn.get_activation(activation) if isinstance(activation, str)
                               else activation() if activation else None)
            self.activation_flag = self.activation is not None
            self.dtype, self.cast = compute_dtype, P.Cast()

        def construct(self, x):
            out_shape = P.Shape()(x)[:-1] + (self.out_channels,)
            x = P.Reshape()(x, (-1, self.in_channels))
            ori = F.dtype(x)
            x = self.matmul(self.cast(x, self.dtype), self.cast(self.weight, self.dtype))
            if self.has_bias:
                x = self.bias_add(x, self.cast(self.bias, self.dtype))
            if self.activation_flag:
                x = self.activation(x)
            return P.Reshape()(F.cast(x, ori), out_shape)

        def shard(self, strategy_matmul=None, strategy_bias=None, strategy_activation=None):
            return self

    class _Anything:
        def __init__(self, *a, **k):
            pass

    common = dict(OpParallelConfig=OpParallelConfig, MoEParallelConfig=MoEParallelConfig,
                  default_dpmp_config=OpParallelConfig(), default_moeparallel_config=MoEParallelConfig(),
                  _check_config=lambda c: True)
    moe = dict(MoEConfig=MoEConfig, default_moe_config=MoEConfig(),
               calculate_expert_capacity=calculate_expert_capacity, _check_moe_config=lambda *a, **k: True)
    subs = {
        'op_parallel_config': common,
        'layers': dict(_LayerNorm=_LayerNorm, _Linear=_Linear, _Dropout=_Dropout),
        'moe': moe,
        'transformer': dict(TransformerOpParallelConfig=TransformerOpParallelConfig,
                            TransformerRecomputeConfig=TransformerRecomputeConfig,
                            default_transformer_config=TransformerOpParallelConfig(), **moe, **common),
    }
    pkg = types.ModuleType('mindspore.parallel._transformer')
    pkg.__path__ = []
    sys.modules[pkg.__name__] = pkg
    for sub, attrs in subs.items():
        mod = types.ModuleType(f'{pkg.__name__}.{sub}')
        mod.__dict__.update(attrs)
        mod.__getattr__ = lambda name: _Anything  # names imported but unused on this path
        sys.modules[mod.__name__] = mod
        setattr(pkg, sub, mod)
    import mindspore.parallel
    mindspore.parallel._transformer = pkg
    return TransformerOpParallelConfig, MoEConfig


def _fp32_casts(ms):
    import mindspore.common.dtype as mstype
    from mindspore.ops import functional as F
    from mindspore.ops import operations as P
    call = P.Cast.__call__
    P.Cast.__call__ = lambda self, x, t: call(self, x, mstype.float32 if t == mstype.float16 else t)
    fcast = F.cast
    F.cast = lambda x, t: fcast(x, mstype.float32 if t == mstype.float16 else t)
    ms.nn.Cell.to_float = lambda self, t: self


def _cpu_equivalents(ms, repo_pkg):
    from mindspore.ops import operations as P
    layers = sys.modules[f'{repo_pkg}.models.layers.layers']
    block = sys.modules[f'{repo_pkg}.models.layers.block']
    plain = layers.Linear.construct

    def linear(self, x):  # (1, E, T, C) x (E, C, H) as E batched matmuls, then the official tail
        if not self.expert_flag:
            return plain(self, x)
        out_shape = P.Shape()(x)[:-1] + (self.out_channels,)
        x = P.Reshape()(x, (self.outer_batch * self.expert_num, -1, self.in_channels))
        w = P.Tile()(self.cast(self.weight, self.dtype), (self.outer_batch, 1, 1))
        x = P.Reshape()(self.matmul(x, w), (self.outer_batch, self.expert_num, -1, self.out_channels))
        if self.has_bias:
            x = self.bias_add(x, self.cast(self.bias, self.dtype))
        if self.activation_flag:
            x = self.cast(self.activation(self.cast(x, self.activation_compute_type)), self.dtype)
        return P.Reshape()(x, out_shape)

    layers.Linear.construct = linear
    roll_init = block.Roll.__init__

    def init(self, shift_size, shift_axis=(1, 2), parallel_config=None):
        roll_init(self, shift_size, shift_axis, parallel_config)
        self.shift = shift_size

    def roll(self, x):  # np.roll over axes 1 and 2
        for ax in (1, 2):
            n = x.shape[ax]
            k = self.shift % n
            if k:
                x = ms.ops.concat((ms.ops.narrow(x, ax, n - k, k), ms.ops.narrow(x, ax, 0, n - k)), ax)
        return x

    block.Roll.__init__, block.Roll.construct = init, roll


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--repo', required=True, help='clone of HanboBizl/RingMoE')
    p.add_argument('--out', required=True)
    p.add_argument('--fp32', action='store_true')
    args = p.parse_args()
    import mindspore as ms
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target='CPU')
    ms.nn.Cell.cast = ms.ops.Cast()
    ParallelConfig, MoEConfig = _install_transformer_stand_ins(ms)
    if args.fp32:
        _fp32_casts(ms)
    # import the official modules without their package __init__ (which imports broken paths)
    root = osp.join(args.repo, 'ringmoe_framework')
    for d, _, _ in os.walk(root):
        if '__pycache__' not in d:
            name = osp.relpath(d, args.repo).replace(os.sep, '.')
            mod = types.ModuleType(name)
            mod.__path__ = [d]
            sys.modules[name] = mod
    from ringmoe_framework.arch.simmim_moe import SimMIM_Moe, SwinTransformerV2ForSimMIM_Moe
    _cpu_equivalents(ms, 'ringmoe_framework')
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    import mindspore_official as off

    a = off.SMALL
    moe = MoEConfig(expert_num=8, capacity_factor=float(max(a['n_spec'], a['n_cross'])),
                    aux_loss_factor=0.001, num_experts_chosen=1)  # capacity = all tokens: no drop
    moe.specific_expert_num, moe.public_expert_num, moe.cross_expert_num = a['n_spec'], 1, a['n_cross']
    pc = ParallelConfig(data_parallel=1, model_parallel=1, expert_parallel=1)
    enc = SwinTransformerV2ForSimMIM_Moe(
        parallel_config=pc, moe_config=moe, modal_num=4, batch_size=4, image_size=a['img'],
        patch_size=a['patch'], in_chans=3, num_classes=0, embed_dim=a['embed_dims'],
        depths=list(a['depths']), num_heads=list(a['num_heads']), window_size=a['window'],
        mlp_ratio=a['mlp_ratio'], qkv_bias=True, qk_scale=None, drop_rate=0., drop_path_rate=0.,
        ape=False, patch_norm=True)
    model = SimMIM_Moe(encoder=enc, encoder_stride=32, parallel_config=pc, modal_num=4)
    enc.mmcat_4N.cat = ms.ops.Concat(axis=0)
    names = {n for n, _ in model.parameters_and_names()}
    params = {(k.replace('attention_mask', 'attn_mask') if k.replace('attention_mask', 'attn_mask') in names
               else k): v for k, v in off.official_params(seed=7, with_training_state=False).items()}
    not_loaded, _ = ms.load_param_into_net(
        model, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in params.items()})
    os.makedirs(args.out, exist_ok=True)
    ms.save_checkpoint(model, osp.join(args.out, 'official.ckpt'))
    model.set_train(False)
    rng = np.random.default_rng(0)
    size = a['img']
    xs = [rng.standard_normal((1, c, size, size)).astype(np.float32) for c in (3, 8, 1, 4)]
    xs_official = [xs[0], xs[1], np.repeat(xs[2], 3, axis=1), xs[3]]  # SAR-L2 replicated
    res = size // a['patch']
    masks = [ms.Tensor(np.zeros((1, res, res), np.float32)) for _ in range(4)]
    z, _ = enc([ms.Tensor(x) for x in xs_official], masks)
    np.savez(osp.join(args.out, 'io.npz'), opt=xs[0], sar_l1=xs[1], sar_l2=xs[2], ms=xs[3],
             z=z.asnumpy(), not_loaded=np.array(not_loaded, dtype=object).astype(str))


if __name__ == '__main__':
    main()
