"""True text about a :class:`.scene.Scene`: grounding captions, long descriptions, referring expressions.

Every sentence is built from :mod:`.vocabulary` templates, and every statement is checked
against the scene's geometry before it is emitted:

* relations ("left of", "above", ...) need the boxes to be disjoint along that axis;
* a referring expression for an object that shares its category with others is emitted only
  when no other object of that category fits it, even loosely (centres instead of boxes).
"""
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .scene import Scene, SceneObject
from .vocabulary import (
    CAPTION_PREFIXES,
    CAPTION_PREFIXES_PLURAL,
    EMPTY_CAPTIONS,
    GRID_POSITIONS,
    NUMBER_WORDS,
    RELATIONS,
    SENTENCE_RELATIONS,
    plural,
)

SIZE_RATIO = 1.8      # area ratio for "larger"/"smaller"
POSITION_MARGIN = 0.06  # share of the image side by which a "leftmost"/"upper" object must win


def _article(word: str) -> str:
    return 'an' if word[0] in 'aeiou' else 'a'


def _strict(rel: str, a: SceneObject, b: SceneObject) -> bool:
    """``a`` is ``rel`` ``b`` with the boxes disjoint along that axis."""
    ax1, ay1, ax2, ay2 = a.box
    bx1, by1, bx2, by2 = b.box
    return {'left of': ax2 <= bx1, 'right of': ax1 >= bx2, 'above': ay2 <= by1, 'below': ay1 >= by2}[rel]


def _loose(rel: str, a: SceneObject, b: SceneObject) -> bool:
    """``a`` could be called ``rel`` ``b`` by someone looking at centres only."""
    (ax, ay), (bx, by) = a.center, b.center
    return {'left of': ax < bx, 'right of': ax > bx, 'above': ay < by, 'below': ay > by}[rel]


def _clearly_before(a: SceneObject, b: SceneObject, axis: int, side: int) -> bool:
    """``a``'s centre precedes ``b``'s along ``axis`` (0: x, 1: y) by a clear margin.

    The margin is the larger of :data:`POSITION_MARGIN` of the image side and half the larger
    object's extent along that axis, so "the left one" is obvious at a glance.
    """
    ext = max(a.box[axis + 2] - a.box[axis], b.box[axis + 2] - b.box[axis])
    return a.center[axis] + max(POSITION_MARGIN * side, 0.5 * ext) < b.center[axis]


def group_by_category(objects: Sequence[SceneObject]) -> 'OrderedDict[int, List[int]]':
    """Object indices grouped by label, groups ordered left to right by their leftmost member."""
    order = sorted(range(len(objects)), key=lambda i: (objects[i].center[0], objects[i].center[1], i))
    groups: 'OrderedDict[int, List[int]]' = OrderedDict()
    for i in order:
        groups.setdefault(objects[i].label, []).append(i)
    return groups


def _enumeration(objects, groups) -> Tuple[str, List[Tuple[int, int, int]]]:
    """``'a red circle, an orange star and two blue squares'`` and (label, start, end) name spans."""
    text, spans = '', []
    items = list(groups.items())
    for k, (label, idxs) in enumerate(items):
        if k > 0:
            text += ' and ' if k == len(items) - 1 else ', '
        name = objects[idxs[0]].name
        if len(idxs) == 1:
            text += _article(name) + ' '
        else:
            name = plural(name)
            text += NUMBER_WORDS[len(idxs)] + ' '
        spans.append((label, len(text), len(text) + len(name)))
        text += name
    return text, spans


def grounding_caption(scene: Scene, rng: np.random.Generator) -> Tuple[str, List[Dict]]:
    """Caption and ODVG regions for a scene.

    Returns:
        caption: e.g. ``'there are a red circle and two blue squares.'``.
        regions: one per category present: ``{'bbox': [x1, y1, x2, y2] or a list of them, 'phrase',
        'tokens_positive': [[start, end]]}`` with ``caption[start:end] == phrase``.
    """
    objs = scene.objects
    if not objs:
        tpl = EMPTY_CAPTIONS[rng.integers(len(EMPTY_CAPTIONS))]
        return tpl.format(bg=scene.background.phrase), []
    groups = group_by_category(objs)
    body, spans = _enumeration(objs, groups)
    first_group = next(iter(groups.values()))
    prefixes = CAPTION_PREFIXES if len(first_group) == 1 else CAPTION_PREFIXES_PLURAL
    prefix = prefixes[rng.integers(len(prefixes))]
    caption = prefix + body
    if rng.random() < 0.3:
        caption += ' on a ' + scene.background.phrase
    caption += '.'
    regions = []
    for (label, s, e), idxs in zip(spans, groups.values()):
        boxes = [[float(v) for v in objs[i].box] for i in idxs]
        regions.append({'bbox': boxes[0] if len(boxes) == 1 else boxes,
                        'phrase': caption[len(prefix) + s:len(prefix) + e],
                        'tokens_positive': [[len(prefix) + s, len(prefix) + e]]})
    return caption, regions


def grid_position(obj: SceneObject, image_size: Tuple[int, int]) -> str:
    """3x3 grid cell name of the object's centre (``'top left'`` ... ``'bottom right'``)."""
    h, w = image_size
    cx, cy = obj.center
    return GRID_POSITIONS[min(int(3 * cy / h), 2)][min(int(3 * cx / w), 2)]


def long_description(scene: Scene, rng: np.random.Generator, max_relations: int = 3) -> str:
    """A multi-sentence, true description: objects, sizes, positions, background, relations."""
    objs, size = scene.objects, scene.size
    bg = scene.background.phrase
    if not objs:
        return f'The image shows a {bg} with no shapes in it.'
    groups = group_by_category(objs)
    count, _ = _enumeration(objs, groups)
    sents = [f'The image shows {count} on a {bg}.']
    order = sorted(range(len(objs)), key=lambda i: (min(int(3 * objs[i].center[1] / size[0]), 2),
                                                   objs[i].center[0], i))
    for i in order:
        o = objs[i]
        sents.append(f'{_article(o.size).capitalize()} {o.size} {o.name} is in the '
                     f'{grid_position(o, size)} of the image.')
    unique = [idxs[0] for idxs in groups.values() if len(idxs) == 1]
    facts = []
    for a in unique:
        for b in unique:
            if a >= b:
                continue
            oa, ob = objs[a], objs[b]
            for rel in RELATIONS:
                if _strict(rel, oa, ob):
                    facts.append(f'The {oa.name} is {SENTENCE_RELATIONS[rel]} the {ob.name}.')
                    break
            if b in oa.covered_by:
                facts.append(f'The {oa.name} is partly covered by the {ob.name}.')
            if oa.area >= 2 * ob.area:
                facts.append(f'The {oa.name} is larger than the {ob.name}.')
            elif ob.area >= 2 * oa.area:
                facts.append(f'The {ob.name} is larger than the {oa.name}.')
    if facts:
        pick = rng.choice(len(facts), size=min(max_relations, len(facts)), replace=False)
        sents += [facts[k] for k in sorted(pick)]
    if len(objs) >= 2:
        sents.append(f'In total there are {NUMBER_WORDS[len(objs)]} shapes.')
    sents.append('There is nothing else in the picture.')
    return ' '.join(sents)


def referring_expressions(scene: Scene, target: int) -> Tuple[List[str], bool]:
    """All true, unambiguous expressions for ``objects[target]``.

    Returns:
        expressions: possibly empty (then the object gets no ref).
        needs_reasoning: ``True`` when another object shares the target's category, so the
        category alone does not identify it.
    """
    objs = scene.objects
    h, w = scene.size
    o = objs[target]
    name = o.name
    same = [s for j, s in enumerate(objs) if j != target and s.label == o.label]
    counts: Dict[int, int] = {}
    for s in objs:
        counts[s.label] = counts.get(s.label, 0) + 1
    refs = [r for r in objs if r.label != o.label and counts[r.label] == 1]
    exprs: List[str] = []
    if not same:
        exprs += [f'the {name}', name]
    else:
        # (holds, forms when there are exactly two of the category, form for three or more)
        bigger = all(o.area >= SIZE_RATIO * s.area for s in same)
        smaller = all(o.area * SIZE_RATIO <= s.area for s in same)
        cases = [
            (all(_clearly_before(o, s, 0, w) for s in same), ('the {} on the left', 'the leftmost {}'),
             'the leftmost {}'),
            (all(_clearly_before(s, o, 0, w) for s in same), ('the {} on the right', 'the rightmost {}'),
             'the rightmost {}'),
            (all(_clearly_before(o, s, 1, h) for s in same), ('the upper {}', 'the {} at the top'),
             'the topmost {}'),
            (all(_clearly_before(s, o, 1, h) for s in same), ('the lower {}', 'the {} at the bottom'),
             'the bottom {}'),
            (bigger, ('the larger {}', 'the big {}'), 'the largest {}'),
            (smaller, ('the smaller {}', 'the little {}'), 'the smallest {}'),
        ]
        for holds, pair_forms, many_form in cases:
            if holds:
                exprs += [f.format(name) for f in (pair_forms if len(same) == 1 else (many_form,))]
    for r in refs:
        for rel in RELATIONS:
            if _strict(rel, o, r) and not any(_loose(rel, s, r) for s in same):
                exprs += [f'the {name} {rel} the {r.name}', f'the {name} that is {rel} the {r.name}']
    return exprs, bool(same)
