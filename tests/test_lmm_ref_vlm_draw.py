"""Drawing a REF-VLM answer: boxes in the triplet's colour, keypoints filled (visible) or hollow."""
import numpy as np
import torch

from llmvision.visualization import color_for, draw_ref_answer


def test_draw_boxes_and_keypoints():
    img = np.full((64, 80, 3), 255, np.uint8)
    trip = [dict(phrase='red circle', unit='box', bboxes=torch.tensor([[5.0, 30, 30, 60]])),
            dict(phrase='star', unit='keypoint', bboxes=torch.tensor([[40.0, 10, 70, 40]]),
                 keypoints=torch.tensor([[[45.0, 15, 0.9], [65.0, 35, 0.1]]]))]
    out = draw_ref_answer(img, trip)
    assert out.shape == img.shape and (img == 255).all()  # input untouched
    assert tuple(out[45, 5]) == color_for(0)                # left edge of the first box
    assert tuple(out[15, 45]) == color_for(1)               # filled keypoint centre
    assert tuple(out[35, 65]) == (255, 255, 255)            # hollow keypoint: centre stays white
    assert (draw_ref_answer(img, []) == img).all()
