"""Convert an official MindSpore RingMoE checkpoint (HanboBizl/RingMoE) to mmringmoe.

    python tools/model_converters/mindspore_to_mmringmoe.py IN.ckpt OUT.pth \
        [--arch auto|tiny|base|1b|'{"embed_dims": ...}'] [--img-size 192] \
        [--sar-l2-norm MEAN STD | --keep-sar-l2-rgb] [--mim-layout] [--allow-partial]

Reads the ``.ckpt`` protobuf directly (MindSpore is not needed) and writes
``{'meta', 'state_dict', 'mim_decoders'}``: the backbone as
``mmringmoe.RingMoEMindSpore`` (sparse, four modalities, mask token; its
config is printed and stored in ``meta['backbone']``) and the four MIM
decoders under ``mmringmoe.RingMoEMIM``'s names (``--mim-layout``: one
RingMoEMIM state dict instead). The official SAR-L2
embedding takes the band replicated into 3 channels; it is folded into our
1-channel ``sar_l2`` embedding (kernels summed; with ``--sar-l2-norm`` the
official per-channel ImageNet normalisation is folded in too, exact for
inputs normalised as ``(v - MEAN) / STD``).

Every official parameter must map and every RingMoE parameter must be set,
else the tool lists the names and writes nothing (``--allow-partial``
overrides). A shape that the requested ``--arch`` does not expect stops the
tool with the parameter's name and both shapes. Never overwrites its input;
refuses to overwrite OUT without ``--force``.
"""
import argparse
import os
import os.path as osp
import sys

if __package__ in (None, ''):  # run as a script from a source checkout
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('input', help='MindSpore .ckpt of the official RingMoE (merged, not sliced)')
    p.add_argument('output', help='mmringmoe checkpoint to write (.pth)')
    p.add_argument('--arch', default='auto',
                   help="'auto' (read from the tensor shapes, default), tiny, base, 1b, "
                   'or a JSON RingMoE arch dict (embed_dims, depths, num_heads, mlp_ratio, '
                   'num_specialized_experts, num_collab_experts, window_size)')
    p.add_argument('--img-size', type=int, default=None,
                   help='pretraining input size (fixes the official windows; default: '
                   'read from the attention masks, else 192)')
    p.add_argument('--sar-l2-norm', nargs=2, type=float, metavar=('MEAN', 'STD'), default=None,
                   help='normalisation of our 1-channel SAR-L2 input; folds the official '
                   'per-channel normalisation exactly')
    p.add_argument('--keep-sar-l2-rgb', action='store_true',
                   help='keep the official 3-channel SAR-L2 embedding (in_channels sar_l2=3)')
    p.add_argument('--no-decoders', action='store_true', help='do not write the MIM decoders')
    p.add_argument('--mim-layout', action='store_true',
                   help="write one state dict of mmringmoe.RingMoEMIM ('backbone.*' and the "
                   "decoders' 'neck.*'), for load_from in a pretraining config")
    p.add_argument('--out-indices', type=int, nargs='+', default=[0, 1, 2, 3])
    p.add_argument('--allow-partial', action='store_true',
                   help='write even if official parameters are unmapped or RingMoE ones missing')
    p.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmringmoe.models.converters import (ConversionError, ShapeMismatchError, convert_official,
                                             format_report, read_mindspore_ckpt)
    from mmringmoe.models.converters.mindspore_ckpt import CheckpointFormatError

    from mmringmoe.models.pruning.checkpoint import check_output_path
    try:  # not the input (links, its .part file alike), not a folder
        check_output_path(args.output, args.input, args.force)
    except (ValueError, FileExistsError) as e:
        raise SystemExit(f'error: {e}')
    if args.sar_l2_norm and args.keep_sar_l2_rgb:
        raise SystemExit('error: --sar-l2-norm folds SAR-L2 to 1 channel; it cannot go '
                         'with --keep-sar-l2-rgb')
    try:
        params = read_mindspore_ckpt(args.input)
        ckpt = convert_official(params, arch=args.arch, img_size=args.img_size,
                                keep_sar_l2_rgb=args.keep_sar_l2_rgb,
                                sar_l2_norm=args.sar_l2_norm,
                                out_indices=args.out_indices,
                                with_decoders=not args.no_decoders,
                                allow_partial=args.allow_partial,
                                source=osp.abspath(args.input), consume=True)
    except (FileNotFoundError, CheckpointFormatError, ShapeMismatchError, ConversionError,
            ValueError) as e:  # ValueError: a bad --arch (unknown name, invalid JSON)
        print(f'error: {e}', file=sys.stderr)
        return 1
    if args.mim_layout:
        if args.no_decoders:
            raise SystemExit('error: --mim-layout needs the decoders (drop --no-decoders)')
        sd = {'backbone.' + k: v for k, v in ckpt['state_dict'].items()}
        sd.update(ckpt.pop('mim_decoders'))
        ckpt['state_dict'] = sd
    print(format_report(ckpt))
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    tmp = args.output + '.part'
    torch.save(ckpt, tmp)
    os.replace(tmp, args.output)
    cfg = ckpt['meta']['backbone']
    print(f'wrote {args.output}\nbackbone config: {cfg}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
