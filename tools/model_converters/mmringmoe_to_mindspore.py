"""Write a converted RingMoE checkpoint back in the official MindSpore layout.

    python tools/model_converters/mmringmoe_to_mindspore.py IN.pth OUT.ckpt [--force]

IN must come from ``mindspore_to_mmringmoe.py`` (possibly fine-tuned since,
same architecture): its ``meta`` records the official names, order, types and
what the mmringmoe layout does not hold (the unused 3-channel
``encoder.patch_embed``, the unfolded SAR-L2 kernels). The constants
(relative position indices, shifted-window masks) are regenerated. A
round trip reproduces every model tensor of the original ``.ckpt`` bit for
bit; optimizer state is not carried. Loads with ``mindspore.load_checkpoint``.
"""
import argparse
import os.path as osp
import sys

if __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('input', help='checkpoint written by mindspore_to_mmringmoe.py')
    p.add_argument('output', help='MindSpore .ckpt to write')
    p.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    args = p.parse_args(argv)
    from mmringmoe.engine.checkpoint import CheckpointError, load_weights_only
    from mmringmoe.models.converters import (ConversionError, to_official,
                                             write_mindspore_ckpt)
    from mmringmoe.models.pruning.checkpoint import check_output_path
    try:  # not the input (links, its .part file alike), not a folder
        check_output_path(args.output, args.input, args.force)
    except (ValueError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    try:
        ckpt = load_weights_only(args.input)
        if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
            raise ConversionError(f'{args.input} has no state_dict: not a converted RingMoE checkpoint')
        params = to_official(ckpt)
        write_mindspore_ckpt(args.output, params, overwrite=args.force)
    except (CheckpointError, FileNotFoundError, ConversionError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'wrote {args.output} ({len(params)} parameters)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
