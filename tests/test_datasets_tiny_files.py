"""The tiny on-disk dataset fixture of tests/helpers.py paints each box in its own colour."""
import cv2
import numpy as np

from helpers import PALETTE, write_image


def test_write_image_paints_boxes(tmp_path):
    img = write_image(tmp_path / 'a.png', 20, 30, [(2, 3, 10, 12)])
    back = cv2.imread(str(tmp_path / 'a.png'))
    assert np.array_equal(img, back)
    assert tuple(back[5, 5]) == PALETTE[0] and tuple(back[0, 0]) == (128, 128, 128)
