"""The RefCOCO "refer" layout, read in one place for every user (``RefCOCODataset`` and the REC
selector's records, ``llmvision.datasets.rec.refer_records``), with one error policy.

Layout (REFERENCE.md section 6)::

    <data_root>/<dataset>/instances.json      COCO images / annotations / categories (bbox [x, y, w, h])
    <data_root>/<dataset>/refs(<split_by>).p  pickle: list of refs {ref_id, ann_id, image_id, split,
                                              sentences [{sent, tokens?, sent_id?}], ...}

Policy: a missing file, a broken json, a pickle that is not a list of dicts, or a split that is
not in the file raise at once; a problem with one ref (a key missing, an ``ann_id`` / ``image_id``
/ ``category_id`` not in instances.json, a bad box, an empty sentence) raises a
:class:`BadSampleError` that the caller's :class:`BadSamplePolicy` raises or counts
(:func:`~llmvision.datasets.bad_samples.parse_with_policy`).

``refs(*).p`` is read by a restricted unpickler that builds plain containers and scalars only
(lists, dicts, tuples, sets, strings, bytes, numbers, booleans, None); any other global in the
file is refused with an error naming the file and the global, so a crafted file cannot run code.
"""
import json
import os.path as osp
import pickle
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .annotation_checks import check_image_size, check_text, check_xywh_box
from .bad_samples import BadSampleError

# (module, name) globals a plain-data pickle may need: container/scalar types, and the
# ``_codecs.encode`` call protocol 2 uses for bytes
PLAIN_PICKLE_GLOBALS = frozenset(
    [(m, n) for m in ('builtins', '__builtin__') for n in
     ('list', 'dict', 'tuple', 'set', 'frozenset', 'str', 'bytes', 'bytearray', 'int', 'float', 'bool',
      'complex', 'unicode', 'long')]
    + [('collections', 'OrderedDict'), ('_codecs', 'encode')])


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in PLAIN_PICKLE_GLOBALS:
            raise BadSampleError(
                f'blocked global {module}.{name}: this file may hold only plain lists, dicts, strings and '
                'numbers (not loaded: unpickling it could run code)', source=self.path)
        return super().find_class(module, name)


def load_plain_pickle(path: str):
    """Unpickle ``path`` allowing plain containers and scalars only (see the module docstring)."""
    with open(path, 'rb') as f:
        try:
            return _PlainUnpickler(f, path).load()
        except BadSampleError:
            raise
        except Exception as e:  # noqa: BLE001  (any unpickling failure: truncated, not a pickle, ...)
            raise BadSampleError(f'cannot unpickle refs: {type(e).__name__}: {e}', source=path) from None


@dataclass
class ReferLayout:
    """The parsed files of one ``<data_root>/<dataset>`` folder (``images`` / ``anns`` by id,
    category names by id, and the refs list in file order)."""
    inst_file: str
    refs_file: str
    images: Dict[int, dict]
    anns: Dict[int, dict]
    categories: Dict[int, str]
    refs: List[dict]

    def split_names(self) -> List[str]:
        return sorted({str(r.get('split')) for r in self.refs} - {'None'})

    def refs_of(self, split: Optional[str]) -> List[Tuple[int, dict]]:
        """``(index in the file, ref)`` of ``split`` (all refs for ``None``); an unknown split raises."""
        if split is not None and split not in {r.get('split') for r in self.refs}:
            raise ValueError(f'split {split!r} not in {self.refs_file} (splits there: {self.split_names()})')
        return [(i, r) for i, r in enumerate(self.refs) if split is None or r.get('split') == split]


def read_refer(data_root: str, dataset: str = 'refcoco', split_by: str = 'unc') -> ReferLayout:
    """Read ``instances.json`` and ``refs(<split_by>).p`` of ``<data_root>/<dataset>``."""
    folder = osp.join(data_root, dataset)
    inst_file = osp.join(folder, 'instances.json')
    refs_file = osp.join(folder, f'refs({split_by}).p')
    for path in (inst_file, refs_file):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} not found (refer layout: <data_root>/<dataset>/instances.json '
                                    'and refs(<split_by>).p)')
    with open(inst_file) as f:
        try:
            inst = json.load(f)
        except json.JSONDecodeError as e:
            raise BadSampleError(f'not valid json: {e}', source=inst_file) from None
    if not isinstance(inst, dict):
        raise BadSampleError('instances.json must hold an object with images / annotations', source=inst_file)
    refs = load_plain_pickle(refs_file)
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise BadSampleError(f'refs must be a list of dicts, got {type(refs).__name__}', source=refs_file)
    return ReferLayout(
        inst_file=inst_file, refs_file=refs_file,
        images={im.get('id'): im for im in inst.get('images', [])},
        anns={a.get('id'): a for a in inst.get('annotations', [])},
        categories={c.get('id'): c.get('name') for c in inst.get('categories', [])},
        refs=refs)


@dataclass
class ReferRef:
    """One validated ref: its image (``file_name``, size), target box (pixel xyxy, clipped) and
    sentences ``[(sent_id, text)]``."""
    ref_id: object
    ann_id: int
    image: dict
    height: int
    width: int
    box: List[float]
    category_id: object
    sentences: List[Tuple[object, str]]


def parse_ref(layout: ReferLayout, ref: dict) -> ReferRef:
    """Validate one ref against instances.json; raises :class:`BadSampleError` (no file named:
    the caller's policy adds the refs file and the ref)."""
    for key in ('ann_id', 'image_id', 'sentences'):
        if key not in ref:
            raise BadSampleError(f'no {key!r} key')
    if ref['ann_id'] not in layout.anns:
        raise BadSampleError(f"ann_id {ref['ann_id']!r} is not in instances.json", kind='missing reference')
    if ref['image_id'] not in layout.images:
        raise BadSampleError(f"image_id {ref['image_id']!r} is not in instances.json", kind='missing reference')
    image, ann = layout.images[ref['image_id']], layout.anns[ref['ann_id']]
    height, width = check_image_size(image)
    box = check_xywh_box(ann.get('bbox'), height, width, key=f"annotation {ref['ann_id']} bbox")
    sentences = []
    for j, sent in enumerate(ref['sentences'] or []):
        if not isinstance(sent, dict):
            raise BadSampleError(f'sentences[{j}] must be a dict with a "sent" key, got {sent!r}', kind='bad text')
        sentences.append((sent.get('sent_id', j), check_text(sent.get('sent'), key=f'sentences[{j}].sent')))
    if not sentences:
        raise BadSampleError('ref has no sentences', kind='bad text')
    return ReferRef(ref_id=ref.get('ref_id'), ann_id=ref['ann_id'], image=image, height=height, width=width,
                    box=box, category_id=ann.get('category_id'), sentences=sentences)


def describe_ref(_, entry: Tuple[int, dict]) -> str:
    """``'ref #<index> (ref_id <id>)'`` for an entry of :meth:`ReferLayout.refs_of`."""
    index, ref = entry
    return f"ref #{index} (ref_id {ref.get('ref_id')!r})"
