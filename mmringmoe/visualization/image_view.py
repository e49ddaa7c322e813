"""The view of an mmengine ``Visualizer`` is its image, pixel for pixel.

mmengine's ``Visualizer.set_image`` shows the image with
``imshow(extent=(0, W, H, 0))`` on a canvas of exactly ``W x H`` pixels and
``get_image`` returns that canvas. matplotlib >= 3.11 autoscales the view in
``Axes.add_collection``, which mmengine's ``draw_bboxes``, ``draw_polygons``,
``draw_lines`` and ``draw_circles`` use (and so mmdet's, mmrotate's and
mmseg's visualizers built on them): a box reaching past the image widened
the view and the picture became the image shrunk inside a white canvas.
:func:`reset_view` sets the view back to the image; :class:`ImageViewMixin`
does it in ``get_image`` (also the one ``draw_binary_masks`` calls), so a
visualizer subclass needs no other change. Parts of shapes past the image
edges are cut off, as with matplotlib < 3.11.
"""
import numpy as np


def reset_view(vis) -> None:
    """Set the view of ``vis`` (an mmengine ``Visualizer`` after
    ``set_image``) back to its image: x from 0 to ``vis.width``, y from
    ``vis.height`` (bottom) to 0 (top), as ``set_image``'s
    ``imshow(extent=(0, W, H, 0))`` set it. Units: image pixels."""
    vis.ax_save.set_xlim(0, vis.width)
    vis.ax_save.set_ylim(vis.height, 0)


class ImageViewMixin:
    """Mix-in (before the mmengine ``Visualizer`` subclass in the bases):
    ``get_image`` returns the image at its own size (uint8 RGB
    ``(H, W, 3)``, the shape given to ``set_image``) with what was drawn over
    it, whatever the extent of the drawn shapes."""

    def get_image(self) -> np.ndarray:
        if getattr(self, '_image', None) is not None:
            reset_view(self)
        return super().get_image()


__all__ = ['reset_view', 'ImageViewMixin']
