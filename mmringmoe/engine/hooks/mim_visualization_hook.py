"""Save input / mask / reconstruction PNGs per modality during MIM pretraining."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmringmoe.registry import HOOKS
from mmringmoe.visualization import display as _display

#: bands shown as RGB per modality: the display module's choice (ms NIR-R-G
#: false colour from B, G, R, NIR)
DISPLAY_BANDS = dict(_display.DISPLAY_BANDS, sar_l1=None)


def stretch_uint8(img: np.ndarray, percentiles=_display.PERCENTILES,
                  valid_mask=None) -> np.ndarray:
    """Per-band percentile stretch of ``(H, W, C)`` floats to uint8
    (:func:`mmringmoe.visualization.percentile_stretch`)."""
    return _display.percentile_stretch(img, valid_mask, percentiles)


def _sar_l2_db(img: np.ndarray) -> np.ndarray:
    """SAR-L2 amplitude ``(H, W, 1)`` in dB, stretched, uint8 ``(H, W)``."""
    return _display.amplitude_db(img)


def _save(path, img):
    from PIL import Image
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    Image.fromarray(img).save(path)


@HOOKS.register_module()
class MIMVisualizationHook(Hook):
    """Write PNGs of the input, the mask and the reconstruction of the first
    ``max_samples`` samples of each modality every ``interval`` iterations
    (and after the last one) to ``work_dir/<out_dir>/iter_<n>/``.

    Per modality: ``<m>_input.png``, ``<m>_mask.png`` (white = masked),
    ``<m>_recon.png`` (prediction) and ``<m>_recon_pasted.png`` (prediction
    on the masked patches, input elsewhere). SAR-L1 inputs are shown as Pauli
    RGB (``sar_l1_input_pauli.png``) and power (``sar_l1_input_power.png``);
    with the physics target the prediction and target are power maps
    (``sar_l1_recon_power.png``, ``sar_l1_target_power.png``).

    Args:
        interval (int): Iterations between saves. Defaults to 100.
        out_dir (str): Sub-folder of the work dir. Defaults to ``'vis_mim'``.
        max_samples (int): Samples per modality. Defaults to 1.
    """
    priority = 'LOW'

    def __init__(self, interval: int = 100, out_dir: str = 'vis_mim',
                 max_samples: int = 1):
        self.interval = interval
        self.out_dir = out_dir
        self.max_samples = max_samples

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        it = runner.iter + 1
        if not (self.every_n_train_iters(runner, self.interval)
                or it == runner.max_iters) or data_batch is None:
            return
        if runner.rank != 0:
            return
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        was_training = model.training
        model.eval()  # no gating noise / drop path in the pictures
        try:
            self.save(model, data_batch,
                      osp.join(runner.work_dir, self.out_dir, f'iter_{it}'))
        finally:
            model.train(was_training)

    @torch.no_grad()
    def save(self, model, data_batch, folder: str) -> Sequence[str]:
        data = model.data_preprocessor(data_batch, False)
        out = model(data['inputs'], data['data_samples'], mode='predict')
        os.makedirs(folder, exist_ok=True)
        written = []
        pre = model.data_preprocessor
        for m, res in out.items():
            x = data['inputs'][m][:self.max_samples].float()
            raw = self._denormalize(pre, m, x)
            mask = res['mask'][:self.max_samples].float()
            scale = x.shape[-1] // mask.shape[-1]
            mask_full = mask.repeat_interleave(scale, 1).repeat_interleave(
                scale, 2)
            pred = res['pred'][:self.max_samples].float()
            target = res['target'][:self.max_samples].float()
            for i in range(x.shape[0]):
                tag = m if self.max_samples == 1 else f'{m}_{i}'
                mk = mask_full[i].cpu().numpy()
                files = {f'{tag}_mask.png': (mk * 255).astype(np.uint8)}
                xi = raw[i].permute(1, 2, 0).cpu().numpy()
                pi = pred[i].permute(1, 2, 0).cpu().numpy()
                ti = target[i].permute(1, 2, 0).cpu().numpy()
                if m == 'sar_l1':
                    files[f'{tag}_input_pauli.png'] = _display.pauli_rgb(xi)
                    files[f'{tag}_input_power.png'] = _display.sar_power_db(
                        xi)
                    if pi.shape[-1] == 1:  # physics target: power maps
                        both = stretch_uint8(
                            np.concatenate([ti, pi], 1)[..., :1])
                        w = ti.shape[1]
                        files[f'{tag}_target_power.png'] = both[:, :w]
                        files[f'{tag}_recon_power.png'] = both[:, w:]
                        pasted = np.where(mk[..., None] > 0, pi, ti)
                        files[f'{tag}_recon_pasted.png'] = stretch_uint8(pasted)
                    else:
                        pr = self._denormalize(pre, m, pred[i:i + 1])[0]
                        pr = pr.permute(1, 2, 0).cpu().numpy()
                        files[f'{tag}_recon_pauli.png'] = _display.pauli_rgb(
                            pr)
                        pasted = np.where(mk[..., None] > 0, pr, xi)
                        files[f'{tag}_recon_pasted.png'] = _display.pauli_rgb(
                            pasted)
                elif m == 'sar_l2':
                    # dB of the measured amplitudes: denormalise both; one
                    # stretch for input and prediction so grey levels compare
                    pr = self._denormalize(pre, m, pred[i:i + 1])[0]
                    pr = pr.permute(1, 2, 0).cpu().numpy()[..., :1]
                    both = _sar_l2_db(np.concatenate([xi[..., :1], pr], 1))
                    w = xi.shape[1]
                    files[f'{tag}_input.png'] = both[:, :w]
                    files[f'{tag}_recon.png'] = both[:, w:]
                    pasted = np.where(mk[..., None] > 0, pr, xi[..., :1])
                    files[f'{tag}_recon_pasted.png'] = _sar_l2_db(pasted)
                else:
                    bands = [b for b in DISPLAY_BANDS.get(m, (0, 1, 2))
                             if b < xi.shape[-1]] or [0]
                    xin = x[i].permute(1, 2, 0).cpu().numpy()[..., bands]
                    pr = pi[..., bands]
                    # one stretch for input and prediction so colours compare
                    both = stretch_uint8(np.concatenate([xin, pr], 1))
                    w = xin.shape[1]
                    files[f'{tag}_input.png'] = both[:, :w]
                    files[f'{tag}_recon.png'] = both[:, w:]
                    pasted = np.where(mk[..., None] > 0, pr, xin)
                    files[f'{tag}_recon_pasted.png'] = stretch_uint8(pasted)
                for name, img in files.items():
                    path = osp.join(folder, name)
                    _save(path, img)
                    written.append(path)
        return written

    @staticmethod
    def _denormalize(pre, modality, x):
        mean = getattr(pre, f'mean_{modality}', None)
        std = getattr(pre, f'std_{modality}', None)
        if mean is None or std is None:
            return x
        return x * std.to(x.device) + mean.to(x.device)


__all__ = ['MIMVisualizationHook', 'stretch_uint8']
