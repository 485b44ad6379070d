"""Build the whole synthetic grounding dataset: images, ODVG, LVIS, RefCOCO and both tokenizers.

Layout under ``out_dir``::

    images/{train,val}_000000.png     all images (annotation file names are relative to images/)
    odvg/{train,val}_grounding.jsonl  ODVG grounding lines (caption, regions, conversations, tags)
    odvg/{train,val}_detection.jsonl  ODVG detection-form lines
    odvg/label_map.json               {"0": "red circle", ...}
    lvis/lvis_v1_{train,val}.json     LVIS v1 format
    refcoco/refcoco/instances.json    refer layout (+ refs(unc).p)
    vqa/{train,val}.json              LLaVA conversation json, one question per record (see .vqa)
    bert_tokenizer/  llm_tokenizer/   locally built tokenizers
    summary.txt

Deterministic: the same ``seed`` and arguments give byte-identical files.
"""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .backgrounds import KINDS, make_background
from .bert_tokenizer import build_bert_tokenizer
from .language import grounding_caption, long_description
from .llm_tokenizer import build_llm_tokenizer
from .lvis import frequency_thresholds, lvis_categories, lvis_json
from .odvg import ImageRecord, detection_line, dumps_jsonl, grounding_line, label_map
from .refcoco import build_refs, dumps_refs, instances_json
from .scene import MAX_OBJECTS, render_scene, sample_labels
from .vocabulary import category_names
from .vqa import write_vqa_set

EMPTY_PROB = 0.08       # share of images drawn with no objects (plus one forced per split)
ZIPF_EXPONENT = 1.2     # skew of the category distribution
NUM_RARE = 6            # categories capped to the LVIS "rare" band in train
_SPLIT_CODES = {'train': 1, 'val': 2}


@dataclass
class SyntheticPaths:
    """Where everything of a generated set lives (all ``pathlib.Path``), plus category names and stats."""
    root: Path
    image_dir: Path
    train_odvg: Path
    val_odvg: Path
    train_det_odvg: Path
    val_det_odvg: Path
    label_map: Path
    lvis_train: Path
    lvis_val: Path
    refcoco_root: Path
    bert_tokenizer: Path
    llm_tokenizer: Path
    categories: List[str] = field(default_factory=list)
    stats: Dict = field(default_factory=dict)

    @classmethod
    def at(cls, root: Union[str, os.PathLike]) -> 'SyntheticPaths':
        """The paths of a set under ``root`` (files are not checked; stats empty)."""
        root = Path(root)
        return cls(root=root, image_dir=root / 'images',
                   train_odvg=root / 'odvg' / 'train_grounding.jsonl',
                   val_odvg=root / 'odvg' / 'val_grounding.jsonl',
                   train_det_odvg=root / 'odvg' / 'train_detection.jsonl',
                   val_det_odvg=root / 'odvg' / 'val_detection.jsonl',
                   label_map=root / 'odvg' / 'label_map.json',
                   lvis_train=root / 'lvis' / 'lvis_v1_train.json',
                   lvis_val=root / 'lvis' / 'lvis_v1_val.json',
                   refcoco_root=root / 'refcoco',
                   bert_tokenizer=root / 'bert_tokenizer', llm_tokenizer=root / 'llm_tokenizer',
                   categories=category_names())

    @property
    def refcoco_instances(self) -> Path:
        return self.refcoco_root / 'refcoco' / 'instances.json'

    @property
    def refcoco_refs(self) -> Path:
        return self.refcoco_root / 'refcoco' / 'refs(unc).p'

    @property
    def vqa_train(self) -> Path:
        return self.root / 'vqa' / 'train.json'

    @property
    def vqa_val(self) -> Path:
        return self.root / 'vqa' / 'val.json'

    def summary(self) -> str:
        """Human-readable description of the set: counts per split, frequencies, refs, paths."""
        s = self.stats
        lines = [f'synthetic grounding set at {self.root}']
        for k in ('seed', 'image_size', 'num_categories'):
            if k in s:
                lines.append(f'  {k}: {s[k]}')
        for split in ('train', 'val'):
            if split in s:
                d = s[split]
                lines.append(f'  {split}: {d["images"]} images ({d["empty_images"]} without objects), '
                             f'{d["instances"]} instances, {d["images_with_duplicates"]} images with '
                             'repeated categories')
        if 'frequency' in s:
            f = s['frequency']
            lines.append(f'  LVIS frequency (train image counts; r <= {f["r_max"]}, f >= {f["f_min"]}): '
                         f'r={f["r"]} c={f["c"]} f={f["f"]}')
        if 'refcoco' in s:
            r = s['refcoco']
            lines.append(f'  RefCOCO: {r["refs"]} refs, {r["sentences"]} sentences, '
                         f'{r["reasoning_refs"]} refs need reasoning, {r["relation_sentences"]} relation '
                         f'sentences; per split {r["splits"]}')
        if 'tokenizers' in s:
            t = s['tokenizers']
            lines.append(f'  tokenizers: bert vocab {t["bert_vocab"]}, llm vocab {t["llm_vocab"]}')
        for name in ('image_dir', 'train_odvg', 'val_odvg', 'train_det_odvg', 'val_det_odvg', 'label_map',
                     'lvis_train', 'lvis_val', 'refcoco_root', 'bert_tokenizer', 'llm_tokenizer'):
            lines.append(f'  {name}: {getattr(self, name)}')
        return '\n'.join(lines)


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode('utf-8'))


CATEGORY_DISTRIBUTIONS = ('zipf', 'uniform')


def _category_plan(seed: int, num_cats: int, distribution: str = 'zipf') -> Tuple[np.ndarray, np.ndarray]:
    """Category weights and the ids of the categories kept rare in train: Zipf-like (LVIS-style long tail, rare
    band capped) or uniform (no rare categories: the VQA profile, where a skewed prior lets the question text
    alone answer)."""
    if distribution not in CATEGORY_DISTRIBUTIONS:
        raise ValueError(f'unknown category distribution {distribution!r}; expected one of {CATEGORY_DISTRIBUTIONS}')
    if distribution == 'uniform':
        return np.ones(num_cats), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 0])
    perm = rng.permutation(num_cats)
    weights = np.empty(num_cats)
    weights[perm] = 1.0 / np.arange(1, num_cats + 1) ** ZIPF_EXPONENT
    return weights, perm[-NUM_RARE:]


def _generate_split(split: str, num: int, seed: int, image_size, weights, rare, r_max,
                    first_image_id: int, first_ann_id: int, image_dir: Path,
                    backgrounds: Optional[Sequence[str]] = None,
                    max_objects: int = MAX_OBJECTS) -> List[ImageRecord]:
    rng = np.random.default_rng([seed, _SPLIT_CODES[split]])
    forced_empty = int(rng.integers(num)) if num >= 2 else -1
    rare_images = {int(c): 0 for c in rare}
    records: List[ImageRecord] = []
    ann_id = first_ann_id
    for idx in range(num):
        if idx == forced_empty or rng.random() < EMPTY_PROB:
            n = 0
        else:
            n = int(rng.integers(1, max_objects + 1))
        w = weights.copy()
        if split == 'train':  # cap rare categories to the LVIS "rare" band
            for c, cnt in rare_images.items():
                if cnt >= r_max:
                    w[c] = 0.0
        bg = None if backgrounds is None else make_background(rng, image_size,
                                                               backgrounds[int(rng.integers(len(backgrounds)))])
        scene = render_scene(rng, image_size, sample_labels(rng, n, w), background=bg)
        for c in {o.label for o in scene.objects}:
            if c in rare_images:
                rare_images[c] += 1
        caption, regions = grounding_caption(scene, rng)
        description = long_description(scene, rng)
        file_name = f'{split}_{idx:06d}.png'
        Image.fromarray(scene.image).save(image_dir / file_name, format='PNG', optimize=False,
                                          compress_level=1)
        ids = list(range(ann_id, ann_id + len(scene.objects)))
        ann_id += len(ids)
        records.append(ImageRecord(split=split, image_id=first_image_id + idx, file_name=file_name,
                                   scene=scene, caption=caption, regions=regions,
                                   description=description, ann_ids=ids))
    return records


def _split_stats(records: List[ImageRecord]) -> Dict:
    dup = 0
    for r in records:
        labels = [o.label for o in r.scene.objects]
        dup += len(labels) != len(set(labels))
    return {'images': len(records), 'empty_images': sum(not r.scene.objects for r in records),
            'instances': sum(len(r.scene.objects) for r in records), 'images_with_duplicates': dup}


def make_synthetic_dataset(out_dir: Union[str, os.PathLike], seed: int = 0, num_train: int = 200,
                           num_val: int = 50, image_size: Tuple[int, int] = (256, 320),
                           categories: str = 'zipf', backgrounds: Optional[Sequence[str]] = None,
                           max_objects: int = MAX_OBJECTS) -> SyntheticPaths:
    """Generate the synthetic grounding dataset under ``out_dir`` and return its :class:`SyntheticPaths`.

    Args:
        out_dir: target folder (created; files of an earlier run are overwritten).
        seed: all randomness derives from it; same seed + arguments -> byte-identical files.
        num_train, num_val: number of images per split (>= 1 each).
        image_size: ``(H, W)`` of every image, each side >= 64.
        categories: ``'zipf'`` (default: LVIS-like long tail with a rare band) or ``'uniform'``.
        backgrounds: background kinds to draw from (subset of ``backgrounds.KINDS``); ``None``: all kinds.
        max_objects: at most this many objects per scene (1 ... 6).
    The defaults give the detection / grounding set; the VQA it-learns set uses ``categories='uniform'``,
    ``backgrounds=('plain', 'gradient')`` (``tools/make_synthetic_dataset.py --categories uniform --backgrounds plain
    gradient``).
    """
    if int(num_train) < 1 or int(num_val) < 1:
        raise ValueError(f'make_synthetic_dataset: num_train={num_train} and num_val={num_val} must be >= 1')
    if not 1 <= int(max_objects) <= MAX_OBJECTS:
        raise ValueError(f'make_synthetic_dataset: max_objects={max_objects} must be in 1 ... {MAX_OBJECTS}')
    if backgrounds is not None:
        backgrounds = tuple(backgrounds)
        bad = [k for k in backgrounds if k not in KINDS]
        if bad or not backgrounds:
            raise ValueError(f'make_synthetic_dataset: backgrounds={list(backgrounds)}; choose from {KINDS}')
    image_size = (int(image_size[0]), int(image_size[1]))
    if min(image_size) < 64:
        raise ValueError(f'make_synthetic_dataset: image_size={image_size} must be at least 64 on each side')
    paths = SyntheticPaths.at(out_dir)
    paths.image_dir.mkdir(parents=True, exist_ok=True)
    weights, rare = _category_plan(seed, len(category_names()), categories)
    categories = category_names()
    r_max, f_min = frequency_thresholds(num_train)
    scene_kw = dict(backgrounds=backgrounds, max_objects=int(max_objects))

    train = _generate_split('train', num_train, seed, image_size, weights, rare, r_max,
                            first_image_id=1, first_ann_id=1, image_dir=paths.image_dir, **scene_kw)
    next_ann = 1 + sum(len(r.ann_ids) for r in train)
    val = _generate_split('val', num_val, seed, image_size, weights, rare, r_max,
                          first_image_id=num_train + 1, first_ann_id=next_ann, image_dir=paths.image_dir,
                          **scene_kw)

    # ODVG
    _write_text(paths.train_odvg, dumps_jsonl([grounding_line(r) for r in train]))
    _write_text(paths.val_odvg, dumps_jsonl([grounding_line(r) for r in val]))
    _write_text(paths.train_det_odvg, dumps_jsonl([detection_line(r) for r in train]))
    _write_text(paths.val_det_odvg, dumps_jsonl([detection_line(r) for r in val]))
    _write_text(paths.label_map, json.dumps(label_map(categories), indent=2) + '\n')

    # LVIS
    cats = lvis_categories(categories, train)
    lvis_rng = np.random.default_rng([seed, 3])
    _write_text(paths.lvis_train, json.dumps(lvis_json(train, cats, lvis_rng)))
    _write_text(paths.lvis_val, json.dumps(lvis_json(val, cats, lvis_rng)))

    # RefCOCO
    refs, ref_stats = build_refs(train + val, np.random.default_rng([seed, 4]))
    _write_text(paths.refcoco_instances, json.dumps(instances_json(train + val, refs, categories)))
    _write_bytes(paths.refcoco_refs, dumps_refs(refs))

    write_vqa_set(paths.root, seed)
    build_bert_tokenizer(paths.bert_tokenizer)
    build_llm_tokenizer(paths.llm_tokenizer)

    freq = {k: sum(c['frequency'] == k for c in cats) for k in 'rcf'}
    splits = {}
    for r in refs:
        splits[r['split']] = splits.get(r['split'], 0) + 1
    with open(paths.bert_tokenizer / 'vocab.txt', encoding='utf-8') as f:
        bert_vocab = sum(1 for _ in f)
    with open(paths.llm_tokenizer / 'tokenizer.json', encoding='utf-8') as f:
        tok = json.load(f)
    llm_vocab = len(tok['model']['vocab']) + len(tok['added_tokens'])
    paths.stats = {'seed': seed, 'image_size': image_size, 'num_categories': len(categories),
                   'train': _split_stats(train), 'val': _split_stats(val),
                   'frequency': dict(freq, r_max=r_max, f_min=f_min),
                   'refcoco': dict(ref_stats, splits=splits),
                   'tokenizers': {'bert_vocab': bert_vocab, 'llm_vocab': llm_vocab}}
    _write_text(paths.root / 'summary.txt', paths.summary().replace(str(paths.root), '.') + '\n')
    return paths
