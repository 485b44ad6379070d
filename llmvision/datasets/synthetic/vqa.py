"""Synthetic VQA set (LLaVA conversation json) built from the synthetic grounding scenes.

One single-turn conversation per (image, question); question types graded from easy to hard, each with a
short answer of one or two words that a metric checks by exact match:

==========  ======================================  =================================================
type        question                                answer
==========  ======================================  =================================================
number      ``How many shapes are there?``          ``zero`` ... ``six`` (no word of the question to
                                                    bind: the easiest type)
exist       ``Is there a red circle?``              ``yes`` / ``no`` (balanced)
colour      ``What color is the star?``             a colour; asked when exactly one star is present
count       ``How many red shapes?``                ``zero`` ... ``six``; half the colours asked are present
relation    ``What shape is left of the red star?`` a shape: every object wholly left of (above) the
                                                    reference has that shape; the reference is unique
caption     ``Describe the image briefly.``         ``a red circle and two blue squares`` (category order)
==========  ======================================  =================================================

Every word is lower case in answers and tokenises the same wherever it stands with the local LLM tokenizer
(:mod:`.llm_tokenizer`, whose corpus includes :func:`vqa_corpus_lines`). Deterministic per seed.
Records: ``{"id", "image", "question_type", "conversations": [{"from": "human", "value": "<image>\\nQ"},
{"from": "gpt", "value": "A"}]}``; ``image`` is relative to the set's ``images/`` folder.
"""
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .vocabulary import COLOURS, PLURALS, SHAPES, category_names

QUESTION_TYPES: Tuple[str, ...] = ('number', 'exist', 'colour', 'count', 'relation', 'caption')
COUNT_WORDS: Tuple[str, ...] = ('zero', 'one', 'two', 'three', 'four', 'five', 'six')
VQA_RELATIONS: Dict[str, str] = {'left of': 'left of', 'above': 'above'}
TEMPLATES: Dict[str, str] = {
    'number': 'How many shapes are there?',
    'exist': 'Is there {article} {colour} {shape}?',
    'colour': 'What color is the {shape}?',
    'count': 'How many {colour} shapes?',
    'relation': 'What shape is {relation} the {colour} {shape}?',
    'caption': 'Describe the image briefly.',
}
EMPTY_CAPTION = 'no shapes'
_SPLIT_CODES = {'train': 1, 'val': 2}

Obj = Tuple[str, str, Sequence[float]]  # (colour, shape, xyxy box)


def article(word: str) -> str:
    """``'an'`` before a vowel, else ``'a'``."""
    return 'an' if word[0] in 'aeiou' else 'a'


def caption_text(objects: Sequence[Obj]) -> str:
    """Canonical short caption: categories in label order with counts (``a red circle and two blue squares``)."""
    names = category_names()
    counts: Dict[str, int] = {}
    for colour, shape, _ in objects:
        counts[f'{colour} {shape}'] = counts.get(f'{colour} {shape}', 0) + 1
    parts = []
    for name in sorted(counts, key=names.index):
        n = counts[name]
        colour, shape = name.split(' ')
        parts.append(f'{article(name)} {name}' if n == 1 else f'{COUNT_WORDS[n]} {colour} {PLURALS[shape]}')
    if not parts:
        return EMPTY_CAPTION
    return parts[0] if len(parts) == 1 else ', '.join(parts[:-1]) + ' and ' + parts[-1]


def _relation_targets(objects: Sequence[Obj], ref: int, relation: str) -> List[int]:
    rx1, ry1, _, _ = objects[ref][2]
    if relation == 'left of':
        return [i for i, o in enumerate(objects) if i != ref and o[2][2] <= rx1]
    return [i for i, o in enumerate(objects) if i != ref and o[2][3] <= ry1]


def image_questions(objects: Sequence[Obj], rng: np.random.Generator) -> List[Tuple[str, str, str]]:
    """``(question_type, question, answer)`` for one image, in :data:`QUESTION_TYPES` order (a type whose
    question would be ambiguous for this image is left out)."""
    out: List[Tuple[str, str, str]] = [('number', TEMPLATES['number'], COUNT_WORDS[len(objects)])]
    present = sorted({(c, s) for c, s, _ in objects}, key=lambda cs: category_names().index(f'{cs[0]} {cs[1]}'))
    absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
    # exist: balanced yes / no
    if present and (rng.random() < 0.5 or not absent):
        c, s = present[int(rng.integers(len(present)))]
        out.append(('exist', TEMPLATES['exist'].format(article=article(c), colour=c, shape=s), 'yes'))
    else:
        c, s = absent[int(rng.integers(len(absent)))]
        out.append(('exist', TEMPLATES['exist'].format(article=article(c), colour=c, shape=s), 'no'))
    # colour of the only object of a shape
    shape_counts = {s: sum(o[1] == s for o in objects) for s in SHAPES}
    single = [s for s in SHAPES if shape_counts[s] == 1]
    if single:
        s = single[int(rng.integers(len(single)))]
        colour = next(o[0] for o in objects if o[1] == s)
        out.append(('colour', TEMPLATES['colour'].format(shape=s), colour))
    # count objects of a colour (half the time a present colour)
    present_colours = sorted({o[0] for o in objects}, key=list(COLOURS).index)
    pool = present_colours if present_colours and rng.random() < 0.5 else list(COLOURS)
    c = pool[int(rng.integers(len(pool)))]
    out.append(('count', TEMPLATES['count'].format(colour=c), COUNT_WORDS[sum(o[0] == c for o in objects)]))
    # relation: unique reference, every target wholly on that side has one shape
    names = [f'{o[0]} {o[1]}' for o in objects]
    options = []
    for ref, name in enumerate(names):
        if names.count(name) != 1:
            continue
        for relation in VQA_RELATIONS:
            targets = _relation_targets(objects, ref, relation)
            shapes = {objects[t][1] for t in targets}
            if len(shapes) == 1:
                options.append((ref, relation, shapes.pop()))
    if options:
        ref, relation, shape = options[int(rng.integers(len(options)))]
        out.append(('relation', TEMPLATES['relation'].format(relation=VQA_RELATIONS[relation],
                                                             colour=objects[ref][0], shape=objects[ref][1]),
                    shape))
    out.append(('caption', TEMPLATES['caption'], caption_text(objects)))
    return out


def vqa_records(split: str, images: Sequence[Tuple[str, Sequence[Obj]]], seed: int,
                question_types: Optional[Sequence[str]] = None) -> List[Dict]:
    """LLaVA json records for ``images`` = ``[(file_name, objects), ...]`` of one split.

    Args:
        split: ``'train'`` or ``'val'`` (seeds the question sampling with ``seed``).
        question_types: keep only these types (default: all of :data:`QUESTION_TYPES`).
    """
    keep = set(QUESTION_TYPES if question_types is None else question_types)
    unknown = keep - set(QUESTION_TYPES)
    if unknown:
        raise ValueError(f'unknown question types {sorted(unknown)}; known: {QUESTION_TYPES}')
    rng = np.random.default_rng([seed, 5, _SPLIT_CODES[split]])
    records = []
    for file_name, objects in images:
        stem = os.path.splitext(file_name)[0]
        for qtype, question, answer in image_questions(objects, rng):
            if qtype in keep:
                records.append({'id': f'{stem}_{qtype}', 'image': file_name, 'question_type': qtype,
                                'conversations': [{'from': 'human', 'value': '<image>\n' + question},
                                                  {'from': 'gpt', 'value': answer}]})
    return records


def multi_turn_records(records: Sequence[Dict], seed: int = 0) -> List[Dict]:
    """One conversation per image holding all of its questions: ``question_type`` ``'multi'``. Cheaper
    training: the image is encoded once per 4-5 answers. The short questions come in a random order (seeded),
    so every type also opens a conversation right after the image, as in the single-turn evaluation records;
    the caption comes last, so no earlier answer gives a later one away."""
    rng = np.random.default_rng([seed, 6])
    by_image: Dict[str, List[Dict]] = {}
    for r in records:
        by_image.setdefault(r['image'], []).append(r)
    out = []
    for image, recs in by_image.items():
        short = [r for r in recs if r['question_type'] != 'caption']
        recs = [short[i] for i in rng.permutation(len(short))] + [r for r in recs if r['question_type'] == 'caption']
        turns = []
        for k, r in enumerate(recs):
            human, gpt = r['conversations']
            turns += [dict(human, value=human['value'] if k == 0 else human['value'].replace('<image>\n', '')), gpt]
        out.append({'id': os.path.splitext(image)[0], 'image': image, 'question_type': 'multi',
                    'conversations': turns})
    return out


def read_detection_jsonl(path: Union[str, os.PathLike]) -> List[Tuple[str, List[Obj]]]:
    """``[(file_name, [(colour, shape, box), ...]), ...]`` from a synthetic ODVG detection-form file."""
    images = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            d = json.loads(line)
            objs = []
            for inst in d['detection']['instances']:
                colour, shape = inst['category'].split(' ')
                objs.append((colour, shape, inst['bbox']))
            images.append((d['filename'], objs))
    return images


def write_vqa_set(root: Union[str, os.PathLike], seed: int = 0) -> Tuple[Path, Path]:
    """Write ``vqa/train.json``, ``vqa/val.json`` (one question per record) and ``vqa/train_multiturn.json``
    (:func:`multi_turn_records`) under a synthetic set's ``root`` (from its ODVG detection files); returns the
    train and val paths."""
    root = Path(root)
    out = []
    for split in ('train', 'val'):
        records = vqa_records(split, read_detection_jsonl(root / 'odvg' / f'{split}_detection.jsonl'), seed)
        out.append(_write_json(root / 'vqa' / f'{split}.json', records))
        if split == 'train':
            _write_json(root / 'vqa' / 'train_multiturn.json', multi_turn_records(records, seed))
    return out[0], out[1]


def _write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(obj, indent=1) + '\n', encoding='utf-8')
    os.replace(tmp, path)
    return path


def vqa_corpus_lines() -> List[str]:
    """Tokenizer training text covering every question and answer word of the VQA set."""
    lines = [TEMPLATES['caption'], TEMPLATES['number'], EMPTY_CAPTION, 'yes', 'no', ' '.join(COUNT_WORDS), ', and ']
    for c in COLOURS:
        for s in SHAPES:
            lines.append(TEMPLATES['exist'].format(article=article(c), colour=c, shape=s))
            lines.append(TEMPLATES['relation'].format(relation='left of', colour=c, shape=s))
            lines.append(TEMPLATES['relation'].format(relation='above', colour=c, shape=s))
            lines.append(f'two {c} {PLURALS[s]} and {article(c)} {c} {s}')
        lines.append(TEMPLATES['count'].format(colour=c))
    lines += [TEMPLATES['colour'].format(shape=s) for s in SHAPES]
    return lines
