"""Frequency-aware expert pruning, EP (paper Eq. 8, 16, Tab. A1).

    python tools/model_converters/prune_experts.py ringmoe-1b_opt.pth \
        usage.json ringmoe-1b_opt-ep.pth                # top 25% (the paper)
    ... --keep-ratio 0.5                                # Tab. A1 top 50%
    ... --fixed-threshold 0.1                           # Tab. A1 fixed phi

USAGE is the file written by collect_expert_usage.py for the same model.
Per block and modality the collaborative experts at or above the
100*(1-keep_ratio)-th percentile of f(E_k | x_m) are kept (with a fixed
threshold: f > phi), united over ``--modalities`` (default: all of the
checkpoint's). The result is still a sparse RingMoE. Its collaborative
routers keep all their logits and a buffer ``collab_router.kept_experts``
limits the top-k choice to the kept experts, so every token whose choice
survives gets exactly its old gate value and output; ``--renormalise``
slices the router rows instead (softmax over the kept experts only: with one
kept expert every gate becomes 1.0). The per-block counts are in the
checkpoint's meta (``arch.num_collab_experts``, and
``arch.num_collab_router_experts`` for the full routers).
"""
import sys

from mmringmoe.models.pruning import load_usage, prune_by_usage
from mmringmoe.models.pruning.cli import (add_common, check_output_path,
                                          parser, read, write)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument('input', help='sparse RingMoE checkpoint')
    p.add_argument('usage', help='usage JSON from collect_expert_usage.py')
    p.add_argument('output', help='new checkpoint')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--keep-ratio', type=float, default=0.25,
                   help='fraction of collaborative experts kept per modality '
                   'and block (default 0.25: 75th-percentile threshold)')
    g.add_argument('--fixed-threshold', type=float, default=None,
                   help='keep experts with f(E_k | x_m) > this instead')
    p.add_argument('--modalities', nargs='+', default=None,
                   help='modalities whose kept experts are united '
                   '(default: all modalities of the checkpoint)')
    p.add_argument('--renormalise', action='store_true',
                   help='slice the collaborative router to the kept experts '
                   '(softmax renormalised over them) instead of keeping the '
                   'full router with a kept-experts mask')
    add_common(p)
    args = p.parse_args(argv)
    check_output_path(args.output, [args.input, args.usage], args.force)
    meta, state_dict = read(args.input, args)
    usage = load_usage(args.usage)
    new_meta, out = prune_by_usage(
        state_dict, meta, usage, args.modalities, args.keep_ratio,
        args.fixed_threshold, usage_path=args.usage,
        renormalise=args.renormalise)
    kept = new_meta['arch']['num_collab_experts']
    print(f'collaborative experts per block: {kept}')
    write(args.output, new_meta, out, state_dict, 'expert pruning')


if __name__ == '__main__':
    from mmringmoe.models.pruning.cli import run
    sys.exit(run(main))
