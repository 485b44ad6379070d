"""Pack a square image and its boxes for the vision-tower tag pre-training (:class:`PatchTagPretrainer`).

Input keys: ``imgs`` uint8 ``[1, 3, S, S]`` (from :class:`LoadSquareImages`), ``instances`` (``bbox`` xyxy
pixels of the original image, ``bbox_label``), ``width``, ``height``, ``img_path``, ``img_id``. Output:
``dict(inputs=imgs, data_samples=BaseDataElement)`` with ``gt_boxes`` float ``[K, 4]`` on the ``S x S``
square (mapped as the square image was made) and ``gt_labels`` long ``[K]``.
"""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from ...registry import TRANSFORMS
from .square_images import square_boxes


@TRANSFORMS.register_module()
class PackPatchTagInputs(BaseTransform):
    """``results`` -> ``dict(inputs=uint8 [1, 3, S, S], data_samples=BaseDataElement)`` (see the module docstring).

    Args:
        aspect: the ``aspect`` the square image was made with (``'pad'`` or ``'resize'``).
    """

    def __init__(self, aspect: str = 'pad'):
        if aspect not in ('pad', 'resize'):
            raise ValueError(f"image aspect must be 'pad' or 'resize', got {aspect!r}")
        self.aspect = aspect

    def transform(self, results: dict) -> dict:
        imgs = results['imgs']
        size = int(imgs.shape[-1])
        instances = results.get('instances', [])
        boxes = square_boxes([i['bbox'] for i in instances], results['width'], results['height'], size, self.aspect)
        sample = BaseDataElement(metainfo=dict(img_path=results.get('img_path'), img_id=results.get('img_id'),
                                               image_size=size))
        sample.gt_boxes = torch.from_numpy(np.ascontiguousarray(boxes))
        sample.gt_labels = torch.as_tensor([i['bbox_label'] for i in instances], dtype=torch.long)
        return dict(inputs=imgs, data_samples=sample)

    def __repr__(self):
        return f'{type(self).__name__}(aspect={self.aspect!r})'
