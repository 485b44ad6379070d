"""ODVG json lines for synthetic images: grounding form (caption, regions, conversations) and detection form.

Formats (REFERENCE.md section 2), one json object per line and per image:

* grounding: ``{"filename", "height", "width", "grounding": {"caption", "regions": [{"bbox": [x1, y1,
  x2, y2] or a list of boxes (plural phrase), "phrase", "tokens_positive": [[start, end], ...]}]},
  "conversations": [{"from": "human", "value": "<image>\\nDescribe the image in detail."},
  {"from": "gpt", "value": long description}], "tags": [category names present]}``
* detection: ``{"filename", "height", "width", "detection": {"instances": [{"bbox", "label", "category"}]}}``
  with ``label`` a 0-based id into the label map ``{"0": "red circle", ...}``.

Boxes are pixel xyxy floats at pixel edges (a box of one pixel at column 3 is ``[3, y, 4, y + 1]``).
"""
import json
from dataclasses import dataclass
from typing import Dict, List

from .scene import Scene

IMAGE_PROMPT = '<image>\nDescribe the image in detail.'


@dataclass
class ImageRecord:
    """Everything known about one generated image (shared by the ODVG, LVIS and RefCOCO writers)."""
    split: str          # 'train' | 'val'
    image_id: int       # unique over train + val, from 1
    file_name: str      # relative to the dataset's image_dir
    scene: Scene
    caption: str
    regions: List[Dict]
    description: str
    ann_ids: List[int]  # one global annotation id per scene object (same order)

    @property
    def height(self) -> int:
        return self.scene.size[0]

    @property
    def width(self) -> int:
        return self.scene.size[1]


def grounding_line(rec: ImageRecord) -> Dict:
    """The ODVG grounding json object of one image."""
    tags = sorted({o.name for o in rec.scene.objects})
    return {'filename': rec.file_name, 'height': rec.height, 'width': rec.width,
            'grounding': {'caption': rec.caption, 'regions': rec.regions},
            'conversations': [{'from': 'human', 'value': IMAGE_PROMPT},
                              {'from': 'gpt', 'value': rec.description}],
            'tags': tags}


def detection_line(rec: ImageRecord) -> Dict:
    """The ODVG detection-form json object of one image (all objects, label = 0-based category id)."""
    return {'filename': rec.file_name, 'height': rec.height, 'width': rec.width,
            'detection': {'instances': [{'bbox': [float(v) for v in o.box], 'label': o.label,
                                         'category': o.name} for o in rec.scene.objects]}}


def dumps_jsonl(objs: List[Dict]) -> str:
    """Json lines text (compact, key order as built, one object per line)."""
    return ''.join(json.dumps(o, ensure_ascii=False) + '\n' for o in objs)


def label_map(categories: List[str]) -> Dict[str, str]:
    """``{"0": name0, "1": name1, ...}``."""
    return {str(i): n for i, n in enumerate(categories)}
