"""Dense expert integration (paper Eq. 17-20): KS, KA or KC.

    python tools/model_converters/merge_experts.py ringmoe-1b_opt.pth \
        ringmoe-1b_opt-kc.pth --method kc \
        --to-mmpretrain swinv2-1b_opt-kc.pth

ks sums all experts of every RMoE layer (specialized of the kept modalities,
collaborative, shared), ka averages them, kc sums rank-(C/N) truncated SVDs of
the specialized and collaborative experts plus the shared expert (biases
summed, so full-rank KC equals KS). The output is a dense RingMoE
(``moe_mode='dense'``). ``--to-mmpretrain`` also writes a state dict that
``mmpretrain.SwinTransformerV2`` loads; its constructor arguments are printed
and stored under the file's ``meta.mmpretrain_cfg``.
"""
import sys

import torch

from mmringmoe.models.pruning import (merge_experts, save_checkpoint,
                                      to_mmpretrain)
from mmringmoe.models.pruning.cli import (add_common, check_output_path,
                                          parser, read, write)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument('input', help='sparse RingMoE checkpoint')
    p.add_argument('output', help='new dense RingMoE checkpoint')
    p.add_argument('--method', choices=('ks', 'ka', 'kc'), required=True)
    p.add_argument('--modalities', nargs='+', default=None,
                   help='modalities to keep (default: all of the checkpoint)')
    p.add_argument('--to-mmpretrain', metavar='OUT2', default=None,
                   help='also write a mmpretrain SwinTransformerV2 state dict '
                   '(needs exactly one modality)')
    p.add_argument('--svd-dtype', choices=('float32', 'float64'),
                   default='float64',
                   help='precision of the KC decomposition (float64)')
    p.add_argument('--device', default=None,
                   help="where KC's SVDs run, e.g. cuda (default: cpu)")
    p.add_argument('--quiet', action='store_true',
                   help='no progress bar (shown only on a terminal)')
    add_common(p)
    args = p.parse_args(argv)
    check_output_path(args.output, args.input, args.force)
    if args.to_mmpretrain:
        check_output_path(args.to_mmpretrain, [args.input, args.output],
                          args.force)
    meta, state_dict = read(args.input, args)
    new_meta, out = merge_experts(state_dict, args.method, args.modalities,
                                  meta, dtype=getattr(torch, args.svd_dtype),
                                  device=args.device, quiet=args.quiet)
    if args.to_mmpretrain:
        # fail before writing anything if the export is impossible
        kwargs, swin = to_mmpretrain(out, meta=new_meta)
    write(args.output, new_meta, out, state_dict,
          f'{args.method.upper()} merge')
    if args.to_mmpretrain:
        cfg = dict(type='mmpretrain.SwinTransformerV2', **kwargs)
        save_checkpoint(args.to_mmpretrain,
                        dict(mmpretrain_cfg=cfg, source=args.input), swin)
        print(f'wrote {args.to_mmpretrain}; build it with {cfg}')


if __name__ == '__main__':
    from mmringmoe.models.pruning.cli import run
    sys.exit(run(main))
