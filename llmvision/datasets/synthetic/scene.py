"""Sample and render one synthetic scene: coloured shapes on a background.

A scene has 0-6 objects. Objects may overlap a little (each keeps at least 90% of its pixels
visible), every object lies fully inside the image, and its box is the tight box of its drawn
mask (pixel edges, xyxy, x2/y2 exclusive).
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .backgrounds import Background, make_background
from .shapes import mask_box, shape_mask
from .vocabulary import COLOURS, SIZE_BINS, category_names

MAX_OBJECTS = 6
MAX_OVERLAP = 0.10  # share of an object's pixels another object may cover


@dataclass
class SceneObject:
    """One shape: ``label`` indexes :func:`.vocabulary.category_names`; ``box`` pixel xyxy."""
    label: int
    name: str
    colour: str
    shape: str
    size: str
    box: Tuple[int, int, int, int]
    area: int  # drawn pixels (full shape, including any covered part)
    covered_by: List[int] = field(default_factory=list)  # indices of objects drawn over this one

    @property
    def center(self) -> Tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass
class Scene:
    """A rendered scene: ``image`` ``[H, W, 3]`` uint8, its background and objects (draw order)."""
    image: np.ndarray
    background: Background
    objects: List[SceneObject]

    @property
    def size(self) -> Tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]


def _boxes_near(a, b, gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def sample_labels(rng: np.random.Generator, num: int, weights: np.ndarray,
                  duplicate_prob: float = 0.5) -> List[int]:
    """Draw ``num`` category labels; with ``duplicate_prob`` one category is repeated 2-3 times."""
    labels: List[int] = []
    p = weights / weights.sum()
    if num >= 2 and rng.random() < duplicate_prob:
        rep = int(min(num, rng.integers(2, 4)))
        labels += [int(rng.choice(len(p), p=p))] * rep
    while len(labels) < num:
        labels.append(int(rng.choice(len(p), p=p)))
    return labels


def render_scene(rng: np.random.Generator, image_size: Tuple[int, int], labels: Sequence[int],
                 background: Optional[Background] = None, max_tries: int = 60) -> Scene:
    """Place and draw shapes for ``labels`` on a background.

    Args:
        rng: the only source of randomness (determinism per seed).
        image_size: ``(H, W)``.
        labels: category ids to draw; an object that finds no place after ``max_tries`` is dropped.
        background: a prepared background, else one is sampled.
    Returns:
        :class:`Scene` with the uint8 image ``[H, W, 3]`` and objects in draw order.
    """
    h, w = image_size
    names = category_names()
    bg = background if background is not None else make_background(rng, image_size)
    image = bg.image.copy()
    scale = min(h, w) / 256.0
    masks: List[np.ndarray] = []
    objects: List[SceneObject] = []
    for label in labels:
        colour, shape = names[label].split(' ')
        for _ in range(max_tries):
            size_word, lo, hi = SIZE_BINS[rng.integers(len(SIZE_BINS))]
            extent = int(rng.integers(max(8, round(lo * scale)), max(9, round(hi * scale)) + 1))
            extent = min(extent, h - 2, w - 2)
            x0 = int(rng.integers(1, w - extent))
            y0 = int(rng.integers(1, h - extent))
            mask = shape_mask(shape, image_size, x0, y0, extent)
            area = int(mask.sum())
            box = mask_box(mask)
            ok = all(not _boxes_near(box, prev.box, gap=0)
                     or (mask & m).sum() <= MAX_OVERLAP * min(area, prev.area)
                     for m, prev in zip(masks, objects))
            # same colour: keep a gap, or two shapes would read as one blob
            ok = ok and all(not _boxes_near(box, o.box, gap=3) for o in objects if o.colour == colour)
            if ok:
                break
        else:
            continue
        idx = len(objects)
        for j, m in enumerate(masks):
            if (mask & m).any():
                objects[j].covered_by.append(idx)
        masks.append(mask)
        objects.append(SceneObject(label=int(label), name=names[label], colour=colour, shape=shape,
                                   size=size_word, box=box, area=area))
        image[mask] = COLOURS[colour]
    return Scene(image=image, background=bg, objects=objects)
