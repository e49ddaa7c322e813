"""t-SNE of backbone features over a classification test set (Fig. A4).

    python tools/analysis_tools/tsne.py CONFIG CHECKPOINT --out tsne.png \
        [--num-classes 10] [--seed 0] [--max-per-class N] [--perplexity 30] \
        [--split test] [--quiet] [--cfg-options k=v ...]

``--num-classes`` classes of the test set are drawn with ``--seed``
(numpy ``default_rng(seed).choice``, without replacement, listed in the
output); every test image of those classes (at most ``--max-per-class``)
goes through the model's ``extract_feat`` (backbone + neck: the pooled
feature the head sees; a 4-D map is averaged over space), and scikit-learn's
``TSNE`` (2-D, PCA init, ``random_state=seed``) embeds the features. Writes
the scatter PNG and ``<out>.npz`` (points, labels, class names, feature
dimension).
"""
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
    p.add_argument('--num-classes', type=int, default=10)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-per-class', type=int, default=None)
    p.add_argument('--perplexity', type=float, default=30.0)
    p.add_argument('--split', default='test', choices=('test', 'val'))
    return p.parse_args(argv)


def choose_classes(num_total: int, num: int, seed: int):
    """Sorted class indices drawn without replacement with ``seed``."""
    rng = np.random.default_rng(seed)
    return sorted(int(c) for c in rng.choice(num_total, min(num, num_total),
                                             replace=False))


def pooled(feats) -> torch.Tensor:
    """``extract_feat`` output -> ``(B, C)``: last element of a tuple, 4-D
    maps averaged over space."""
    if isinstance(feats, (tuple, list)):
        feats = feats[-1]
    if feats.dim() == 4:
        feats = feats.mean((2, 3))
    return feats.reshape(feats.shape[0], -1)


def collect_features(cfg, model, classes, split='test', max_per_class=None,
                     device='cpu', quiet=False):
    """Features ``(N, C)`` float32 and labels ``(N,)`` (indices into
    ``classes``) of the test images of ``classes``."""
    from mmringmoe.visualization import progress
    from mmringmoe.visualization.analysis import build_test_loader
    loader = build_test_loader(cfg, split)
    ds = loader.dataset
    keep, seen = [], {c: 0 for c in classes}
    for i in range(len(ds)):
        label = int(np.asarray(ds.get_cat_ids(i)).ravel()[0])
        if label in seen and (max_per_class is None
                              or seen[label] < max_per_class):
            keep.append(i)
            seen[label] += 1
    if not keep:
        raise ValueError(f'the {split} set has no image of classes {classes}')
    from torch.utils.data import DataLoader, Subset
    sub = DataLoader(Subset(ds, keep), batch_size=loader.batch_size,
                     collate_fn=loader.collate_fn, shuffle=False)
    feats, labels = [], []
    pos = {c: i for i, c in enumerate(classes)}
    from mmringmoe.visualization.analysis import config_scope
    with torch.no_grad(), config_scope(cfg):
        for batch in progress(sub, desc='features', quiet=quiet,
                              unit='batch'):
            data = model.data_preprocessor(batch, False)
            f = pooled(model.extract_feat(data['inputs'].to(device)))
            feats.append(f.float().cpu().numpy())
            labels += [pos[int(s.gt_label.ravel()[0])]
                       for s in data['data_samples']]
    return np.concatenate(feats), np.asarray(labels)


def run(args):
    from sklearn.manifold import TSNE

    from mmringmoe.engine.cli import UserError
    from mmringmoe.visualization.analysis import load_model, tsne_figure
    try:
        cfg, model = load_model(args.config, args.checkpoint,
                                args.cfg_options, args.device)
        from mmringmoe.visualization.analysis import build_test_loader
        ds = build_test_loader(cfg, args.split).dataset
        ds_classes = list(ds.metainfo.get('classes') or [])
        if not ds_classes:
            raise ValueError('the test set names no classes')
        classes = choose_classes(len(ds_classes), args.num_classes,
                                 args.seed)
        feats, labels = collect_features(
            cfg, model, classes, args.split, args.max_per_class, args.device,
            args.quiet)
    except ValueError as e:
        raise UserError(str(e)) from e
    n = feats.shape[0]
    if n < 3:
        raise UserError(f'{n} test images of the chosen classes: t-SNE '
                        'needs at least 3')
    perplexity = min(args.perplexity, (n - 1) / 3.0)
    points = TSNE(n_components=2, perplexity=perplexity, init='pca',
                  random_state=args.seed).fit_transform(feats)
    names = [ds_classes[c] for c in classes]
    tsne_figure(points, labels, names, args.out,
                title=f't-SNE of {feats.shape[1]}-d features, {n} images, '
                f'seed {args.seed}')
    np.savez(osp.splitext(args.out)[0] + '.npz', points=points,
             labels=labels, classes=np.asarray(names),
             class_indices=np.asarray(classes), perplexity=perplexity)
    print(f'wrote {args.out}: {n} images of {len(classes)} classes '
          f'{names}, perplexity {perplexity:g}')
    return dict(points=points, labels=labels, classes=names)


def main(argv=None):
    from mmringmoe.engine.cli import run_cli
    return run_cli(run, parse_args(argv))


if __name__ == '__main__':
    main()
