"""Sparse upcycling: start a sparse RingMoE from a dense Swin V2 checkpoint.

    python tools/model_converters/swinv2_to_ringmoe.py swinv2_base.pth \
        ringmoe-base_upcycled.pth --modalities opt ms sar_l1 sar_l2

IN holds mmpretrain ``SwinTransformerV2`` names (whole-model checkpoints with
``backbone.`` keys are accepted). Every expert (specialized of each modality,
collaborative, shared) becomes a copy of the block's dense FFN and every
router starts at zero. A modality whose channel count differs from the Swin
V2 patch embedding gets the kernel's channel mean, scaled to keep the
response to a constant image.
"""
import sys

from mmringmoe.engine.checkpoint import load_weights_only
from mmringmoe.models.pruning import upcycle
from mmringmoe.models.pruning.cli import (add_common, check_output_path,
                                          parse_channels, parser, write)
from mmringmoe.models.pruning.checkpoint import strip_prefix


def main(argv=None):
    p = parser(__doc__)
    p.add_argument('input', help='dense Swin V2 checkpoint (mmpretrain names)')
    p.add_argument('output', help='new sparse RingMoE checkpoint')
    p.add_argument('--modalities', nargs='+',
                   default=['opt', 'ms', 'sar_l1', 'sar_l2'])
    p.add_argument('--in-channels', nargs='*', metavar='MODALITY=N',
                   help='channels per modality (default opt 3, ms 4, '
                   'sar_l1 8, sar_l2 1)')
    p.add_argument('--num-specialized-experts', type=int, default=4)
    p.add_argument('--num-collab-experts', type=int, default=4)
    p.add_argument('--mask-token', action='store_true',
                   help='add a zero mask token (to continue with MIM)')
    add_common(p)
    args = p.parse_args(argv)
    check_output_path(args.output, args.input, args.force)
    ckpt = load_weights_only(args.input)
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) \
        else None
    if not isinstance(state_dict, dict):
        raise ValueError(f'{args.input}: expected a state dict')
    state_dict = strip_prefix(state_dict)
    channels = dict(opt=3, ms=4, sar_l1=8, sar_l2=1)
    channels.update(parse_channels(args.in_channels))
    unknown = [m for m in args.modalities if m not in channels]
    if unknown:
        raise ValueError(f'unknown modality {unknown}: give its channels '
                         'with --in-channels NAME=N')
    meta, out = upcycle(
        state_dict, args.modalities,
        {m: channels[m] for m in args.modalities},
        args.num_specialized_experts, args.num_collab_experts,
        mask_token=args.mask_token)
    write(args.output, meta, out, state_dict, 'sparse upcycling')


if __name__ == '__main__':
    from mmringmoe.models.pruning.cli import run
    sys.exit(run(main))
