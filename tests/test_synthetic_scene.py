"""Synthetic scenes: shape masks, backgrounds, placement, and the language built on hand-made scenes."""
import numpy as np
import pytest

from llmvision.datasets.synthetic.backgrounds import KINDS, available_photos, make_background
from llmvision.datasets.synthetic.language import grounding_caption, long_description, referring_expressions
from llmvision.datasets.synthetic.scene import MAX_OVERLAP, Scene, SceneObject, render_scene
from llmvision.datasets.synthetic.shapes import mask_box, shape_mask
from llmvision.datasets.synthetic.vocabulary import COLOURS, SHAPES, category_names

SIZE = (120, 160)


def test_shape_masks_and_boxes():
    for shape in SHAPES:
        m = shape_mask(shape, SIZE, 10, 20, 40)
        x1, y1, x2, y2 = mask_box(m)
        assert 10 <= x1 < x2 <= 50 and 20 <= y1 < y2 <= 60
        assert m[y1:y2, x1:x2].sum() == m.sum()  # box covers the whole mask ...
        assert m[y1, x1:x2].any() and m[y2 - 1, x1:x2].any() and m[y1:y2, x1].any() and m[y1:y2, x2 - 1].any()
    assert mask_box(shape_mask('square', SIZE, 3, 4, 5)) == (3, 4, 8, 9)
    with pytest.raises(ValueError, match='hexagon'):
        shape_mask('hexagon', SIZE, 0, 0, 10)
    with pytest.raises(ValueError, match='empty'):
        mask_box(np.zeros(SIZE, bool))


def test_backgrounds():
    rng = np.random.default_rng(0)
    assert len(available_photos()) >= 6, 'photos shipped in the scikit-image wheel'
    shape_colours = np.array(list(COLOURS.values()), np.uint8)
    for kind in KINDS:
        for _ in range(3):
            bg = make_background(rng, SIZE, kind)
            assert bg.kind == kind and bg.image.shape == (*SIZE, 3) and bg.image.dtype == np.uint8
            assert 'background' in bg.phrase
            # no background pixel has a shape's exact colour (so drawn pixels are identifiable)
            flat = bg.image.reshape(-1, 1, 3)
            assert not (flat == shape_colours[None]).all(-1).any(), kind
    assert np.ptp(make_background(np.random.default_rng(1), SIZE, 'gradient').image.astype(int)) > 20
    with pytest.raises(ValueError, match='unknown background'):
        make_background(rng, SIZE, 'stripes')


def test_render_scene_places_visible_objects():
    names = category_names()
    for seed in range(5):
        rng = np.random.default_rng(seed)
        labels = [0, 0, 5, 9, 14, 23]
        scene = render_scene(rng, SIZE, labels)
        again = render_scene(np.random.default_rng(seed), SIZE, labels)
        assert np.array_equal(scene.image, again.image)
        assert len(scene.objects) >= 4
        for o in scene.objects:
            x1, y1, x2, y2 = o.box
            assert 0 < x1 < x2 < SIZE[1] and 0 < y1 < y2 < SIZE[0]
            assert o.name == names[o.label] and o.size in ('small', 'medium', 'large')
            visible = (scene.image[y1:y2, x1:x2] == np.array(COLOURS[o.colour], np.uint8)).all(-1).sum()
            assert visible >= (1 - MAX_OVERLAP) * o.area - 1


def _obj(label, box, area=None):
    name = category_names()[label]
    colour, shape = name.split(' ')
    x1, y1, x2, y2 = box
    return SceneObject(label=label, name=name, colour=colour, shape=shape, size='medium', box=box,
                       area=area if area is not None else (x2 - x1) * (y2 - y1))


def _scene(objects, size=(200, 300)):
    bg = make_background(np.random.default_rng(0), size, 'plain')
    return Scene(image=bg.image, background=bg, objects=objects)


def test_referring_expressions_on_handmade_scene():
    red_circle, blue_star = 0, 2 * 4 + 3
    left = _obj(red_circle, (10, 20, 50, 60))
    right = _obj(red_circle, (200, 100, 280, 180))    # clearly right, lower and 4x larger
    star = _obj(blue_star, (120, 10, 160, 50))
    scene = _scene([left, right, star])
    exprs_left, reasoning = referring_expressions(scene, 0)
    assert reasoning
    assert {'the red circle on the left', 'the leftmost red circle', 'the upper red circle',
            'the smaller red circle', 'the red circle left of the blue star'} <= set(exprs_left)
    assert 'the red circle' not in exprs_left and 'the larger red circle' not in exprs_left
    exprs_right, _ = referring_expressions(scene, 1)
    assert {'the red circle on the right', 'the larger red circle', 'the lower red circle',
            'the red circle right of the blue star'} <= set(exprs_right)
    # the right circle is below the star, but so is the left one's centre: ambiguous, not emitted
    assert 'the red circle below the blue star' not in exprs_right
    assert 'the red circle above the blue star' not in exprs_left  # not true
    exprs_star, reasoning = referring_expressions(scene, 2)
    assert not reasoning and exprs_star[:2] == ['the blue star', 'blue star']
    # two circles too close to tell apart by position: no positional expression
    near = _scene([_obj(red_circle, (100, 100, 140, 140)), _obj(red_circle, (110, 150, 150, 190))])
    e, _ = referring_expressions(near, 0)
    assert not any(w in ' '.join(e) for w in ('left', 'right', 'larger', 'smaller'))


def test_captions_and_descriptions_on_handmade_scene():
    green_square, red_circle = 1 * 4 + 1, 0
    scene = _scene([_obj(green_square, (10, 10, 40, 40)), _obj(red_circle, (200, 120, 260, 180)),
                    _obj(green_square, (100, 150, 130, 180))])
    rng = np.random.default_rng(0)
    caption, regions = grounding_caption(scene, rng)
    assert caption.endswith('two green squares and a red circle.') or \
        'two green squares and a red circle on a plain' in caption
    by_phrase = {r['phrase']: r for r in regions}
    assert by_phrase['green squares']['bbox'] == [[10.0, 10.0, 40.0, 40.0], [100.0, 150.0, 130.0, 180.0]]
    assert by_phrase['red circle']['bbox'] == [200.0, 120.0, 260.0, 180.0]
    for r in regions:
        (s, e), = r['tokens_positive']
        assert caption[s:e] == r['phrase']
    desc = long_description(scene, rng)
    assert desc.startswith('The image shows two green squares and a red circle on a plain ')
    assert 'A medium green square is in the top left of the image.' in desc
    assert 'A medium red circle is in the bottom right of the image.' in desc
    assert 'In total there are three shapes.' in desc
    empty_caption, empty_regions = grounding_caption(_scene([]), rng)
    assert empty_regions == [] and 'background' in empty_caption
    assert 'no shapes' in long_description(_scene([]), rng)
