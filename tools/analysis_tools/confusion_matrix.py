"""Confusion matrix of a segmentation or classification config on its test
set (the segmentation appendix, Fig. A5).

    python tools/analysis_tools/confusion_matrix.py CONFIG CHECKPOINT \
        --out cm.png [--split test] [--counts] [--quiet] [--cfg-options ...]

Runs ``model.test_step`` over the test dataloader and counts, with
mmpretrain's ``ConfusionMatrix.calculate``, every (ground truth,
prediction) pair: pixels of ``pred_sem_seg`` / ``gt_sem_seg`` (ground truth
``ignore_index`` left out) or labels of ``pred_label`` / ``gt_label``.
Rows are the ground truth, columns the prediction. Writes the heatmap
(row-normalised unless ``--counts``; the counts are printed in the cells)
and ``<out>.json`` with the integer matrix and the class names.
"""
import json
import os.path as osp
import sys

if __package__ in (None, ''):
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def parse_args(argv=None):
    from mmringmoe.visualization.analysis import analysis_arg_parser
    p = analysis_arg_parser(__doc__)
    p.add_argument('--split', default='test', choices=('test', 'val'))
    p.add_argument('--counts', action='store_true',
                   help='colour by counts instead of row fractions')
    p.add_argument('--ignore-index', type=int, default=None,
                   help="default: the decode head's ignore_index, else 255")
    return p.parse_args(argv)


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) \
        else np.asarray(x)


def accumulate(samples, num_classes, ignore_index=255, matrix=None):
    """Add the (ground truth, prediction) counts of output data samples."""
    from mmringmoe.visualization.analysis import confusion_matrix
    m = np.zeros((num_classes, num_classes), np.int64) if matrix is None \
        else matrix
    for s in samples:
        if 'pred_sem_seg' in s:
            if 'gt_sem_seg' not in s:
                raise ValueError('segmentation samples without gt_sem_seg')
            m += confusion_matrix(_np(s.pred_sem_seg.data),
                                  _np(s.gt_sem_seg.data), num_classes,
                                  ignore_index)
        elif 'pred_label' in s:
            m += confusion_matrix(_np(s.pred_label).ravel()[:1],
                                  _np(s.gt_label).ravel()[:1], num_classes,
                                  None)
        else:
            raise ValueError('neither pred_sem_seg nor pred_label in the '
                             'model output: not a segmentation or '
                             'classification config')
    return m


def run(args):
    from mmringmoe.engine.cli import UserError
    from mmringmoe.visualization import progress
    from mmringmoe.visualization.analysis import (build_test_loader,
                                                  confusion_figure,
                                                  load_model)
    try:
        cfg, model = load_model(args.config, args.checkpoint,
                                args.cfg_options, args.device)
        loader = build_test_loader(cfg, args.split)
        classes = list(loader.dataset.metainfo.get('classes') or [])
        if not classes:
            raise ValueError('the test set names no classes')
        ignore = args.ignore_index
        if ignore is None:
            head = getattr(model, 'decode_head', None)
            ignore = getattr(head, 'ignore_index', 255)
        m = None
        from mmringmoe.visualization.analysis import config_scope
        with torch.no_grad(), config_scope(cfg):
            for batch in progress(loader, desc='test', quiet=args.quiet,
                                  unit='batch'):
                m = accumulate(model.test_step(batch), len(classes), ignore,
                               m)
    except ValueError as e:
        raise UserError(str(e)) from e
    if m is None:
        raise UserError(f'the {args.split} set is empty')
    confusion_figure(m, classes, args.out, normalize=not args.counts,
                     title=f'{osp.basename(args.config)} ({args.split})')
    with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(dict(classes=classes, rows='ground truth',
                       columns='prediction', ignore_index=ignore,
                       matrix=m.tolist()), f, indent=1)
    print(f'wrote {args.out}: {int(m.sum())} counted, OA '
          f'{100.0 * np.trace(m) / max(m.sum(), 1):.2f} %')
    return m


def main(argv=None):
    from mmringmoe.engine.cli import run_cli
    return run_cli(run, parse_args(argv))


if __name__ == '__main__':
    main()
