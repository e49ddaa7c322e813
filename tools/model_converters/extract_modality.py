"""Modality decomposition (paper Sec. 3.4): keep some modalities of a RingMoE.

    python tools/model_converters/extract_modality.py ringmoe-14.7b.pth \
        ringmoe-1b_opt.pth --modalities opt

Keeps the chosen modalities' patch embeddings, specialized experts and
routers, all collaborative experts with their router and the shared expert;
the 14.7B four-modality model becomes the 6.5B RingMoE-Opt.
"""
import sys

from mmringmoe.models.pruning import extract_modalities
from mmringmoe.models.pruning.cli import (add_common, check_output_path,
                                          parser, read, write)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument('input', help='RingMoE checkpoint (ours, MIM or mmengine)')
    p.add_argument('output', help='new checkpoint')
    p.add_argument('--modalities', nargs='+', required=True,
                   help='modalities to keep, in the new model order')
    add_common(p)
    args = p.parse_args(argv)
    check_output_path(args.output, args.input, args.force)
    meta, state_dict = read(args.input, args)
    new_meta, out = extract_modalities(state_dict, args.modalities, meta)
    write(args.output, new_meta, out, state_dict,
          f'kept {args.modalities} of {meta["modalities"]}')


if __name__ == '__main__':
    from mmringmoe.models.pruning.cli import run
    sys.exit(run(main))
