"""Flip test-time augmentation (TTA) of the windows of dense scene inference.

Each batch of windows is also run flipped; every output is flipped back and
the outputs of one window are merged *before* the windows are blended, as
mmseg's TTA does for one image (``TestTimeAug`` with ``RandomFlip``
``prob=1`` and without, ``SegTTAModel.merge_preds``):

- ``tta='flip'``: the window as it is and flipped horizontally (mmseg's
  default TTA flip, ``RandomFlip(prob=1., direction='horizontal')``);
- ``tta='flip4'``: as it is, horizontal, vertical and both (mmcv's
  ``RandomFlip`` directions ``'horizontal'``, ``'vertical'``,
  ``'diagonal'``): overhead imagery has no preferred up and down.

The merge of the ``A`` flipped-back outputs of one window, per pixel:

- segmentation, change detection with ``C > 1`` classes: the mean of the
  softmax probabilities, ``p = 1/A sum_a softmax(l_a)``, which is what
  mmseg 1.2.2's ``SegTTAModel.merge_preds`` averages (probabilities, not
  logits). The window hands the blender ``log p`` (computed as
  ``logsumexp_a log_softmax(l_a) - log A``: no underflow to ``-inf``), which
  the blender treats as it treats logits without TTA: ``softmax(log p) = p``,
  so a scene of one window gives exactly mmseg's TTA probabilities, and
  across windows the blend is the weighted mean of log-probabilities, the
  same as blending logits (a logit vector and its log-softmax differ by a
  per-pixel constant that the final softmax removes);
- one output channel (a sigmoid head): the mean of the sigmoids, class
  ``p > threshold``, handed over as the log-odds ``log p - log(1 - p)``,
  so the blender's sigmoid gives ``p`` back. This is what
  ``SegTTAModel.merge_preds`` means to do; mmseg 1.2.2 applies the sigmoid
  twice there (``postprocess_result`` already stored ``sigmoid(l)`` in
  ``seg_logits``, ``merge_preds`` takes ``.sigmoid()`` of it again: every
  mean lies in [0.5, 0.73], so with threshold 0.5 every pixel is class 1),
  which is not copied (``tests/test_inference_tta.py`` shows it);
- depth: the mean of the metres (mmseg's
  ``DepthEstimator.slide_flip_inference`` for one window).

The whole window is flipped, its fill past a scene edge included; the valid
mask of the window is not flipped, since the merged output is in the
window's own orientation. Flipping happens on the packed window (``inputs``
``(C, h, w)``, after the test pipeline, before the data preprocessor), as
``RandomFlip`` in a TTA pipeline does, so a preprocessor that pads pads the
flipped image at the bottom and right, and the flip back covers the
``(h, w)`` image part of the output (mmseg's ``postprocess_result`` crops the
padding, then flips).
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

#: flip directions of each TTA mode (None: the window as it is).
TTA_MODES = {
    'flip': (None, 'horizontal'),
    'flip4': (None, 'horizontal', 'vertical', 'diagonal'),
}
_DIMS = dict(horizontal=(-1, ), vertical=(-2, ), diagonal=(-2, -1))


def check_tta(tta: Optional[str], task: str,
              dense_tasks: Sequence[str]) -> Tuple[Optional[str], ...]:
    """The flip directions of ``tta`` for a model of ``task``.

    Returns:
        tuple: ``(None, )`` for ``tta=None`` (no TTA), else
        :data:`TTA_MODES` ``[tta]``.

    Raises:
        ValueError: one line, for an unknown mode or a task without dense
            output (detection, classification: their windows are not merged
            pixel by pixel).
    """
    if tta is None:
        return (None, )
    if tta not in TTA_MODES:
        raise ValueError(f'tta must be one of {tuple(TTA_MODES)} or None, '
                         f'got {tta!r}')
    if task not in dense_tasks:
        raise ValueError(f'--tta {tta} is for segmentation, change detection '
                         f'and depth models; this is a {task} model')
    return TTA_MODES[tta]


def flip_image(x: torch.Tensor, direction: Optional[str]) -> torch.Tensor:
    """``x`` ``(..., H, W)`` flipped in ``direction`` (None: ``x`` itself)."""
    if direction is None:
        return x
    return x.flip(_DIMS[direction])


def _flip_packed(packed: List[dict], direction: Optional[str]) -> List[dict]:
    if direction is None:
        return packed
    out = []
    for p in packed:
        q = dict(p)
        q['inputs'] = flip_image(p['inputs'], direction)
        out.append(q)
    return out


class FlipMerge:
    """Running merge of the flipped-back outputs of one batch of windows
    (module docstring), holding one or two tensors of the output's size
    whatever the number of flips.

    Args:
        kind (str): ``'softmax'`` (class logits; :meth:`result` is ``log``
            of the mean probabilities, ``logsumexp_a log_softmax(l_a) -
            log A``), ``'sigmoid'`` (one logit channel; the log-odds of the
            mean sigmoid) or ``'mean'`` (depth in metres).
    """

    def __init__(self, kind: str):
        if kind not in ('softmax', 'sigmoid', 'mean'):
            raise ValueError(f'unknown merge {kind!r}')
        self.kind, self.n, self.acc = kind, 0, None

    def add(self, y: torch.Tensor):
        """Add one flipped-back output ``(B, C, h, w)``."""
        if self.kind == 'softmax':
            terms = (torch.log_softmax(y, dim=1), )
        elif self.kind == 'sigmoid':
            terms = (F.logsigmoid(y), F.logsigmoid(-y))
        else:
            terms = (y, )
        if self.acc is None:
            self.acc = list(terms)
        elif self.kind == 'mean':
            self.acc[0] = self.acc[0] + y
        else:
            self.acc = [torch.logaddexp(a, t) for a, t in zip(self.acc, terms)]
        self.n += 1

    def result(self) -> torch.Tensor:
        if self.kind == 'mean':
            return self.acc[0] / self.n
        if self.kind == 'softmax':
            return self.acc[0] - math.log(self.n)
        return self.acc[0] - self.acc[1]


def merge_flips(outputs: torch.Tensor, kind: str) -> torch.Tensor:
    """Merge ``outputs`` ``(A, B, C, h, w)`` of ``A`` flips (already flipped
    back) into ``(B, C, h, w)`` with :class:`FlipMerge` ``(kind)``."""
    merge = FlipMerge(kind)
    for y in outputs:
        merge.add(y)
    return merge.result()


def flip_tta(forward: Callable[[List[dict]], torch.Tensor],
             packed: List[dict], directions: Sequence[Optional[str]],
             depth: bool) -> torch.Tensor:
    """Run ``forward`` (packed windows -> ``(B, C, H', W')`` float tensor)
    on each flip of the windows and merge the flipped-back outputs (one
    flip at a time: memory of one output and the running merge).

    Args:
        forward: the model's dense forward of a list of packed windows.
        packed: the windows (``inputs`` ``(C, h, w)``, ``data_samples``).
        directions: flip directions, e.g. ``TTA_MODES['flip']``.
        depth (bool): merge metres by their mean (else probabilities).

    Returns:
        ``(B, C, H', W')`` float32: log mean probabilities / log-odds of the
        mean sigmoid / mean metres; only the ``(h, w)`` image part is
        meaningful (a preprocessor's padding beyond it is not flipped back;
        the scene loop keeps ``[:h, :w]``).

    Raises:
        ValueError: an output smaller than its input window.
    """
    h, w = packed[0]['inputs'].shape[-2:]
    merge = None
    for d in directions:
        y = forward(_flip_packed(packed, d))
        if y.shape[-2] < h or y.shape[-1] < w:
            raise ValueError(f'the model output {tuple(y.shape[-2:])} is '
                             f'smaller than its input window {(h, w)}: '
                             'cannot flip it back')
        if d is not None:
            y = y.clone()
            y[..., :h, :w] = flip_image(y[..., :h, :w], d)
        if merge is None:
            merge = FlipMerge('mean' if depth else (
                'sigmoid' if y.shape[1] == 1 else 'softmax'))
        merge.add(y)
    return merge.result()


__all__ = ['TTA_MODES', 'check_tta', 'flip_image', 'FlipMerge', 'merge_flips',
           'flip_tta']
