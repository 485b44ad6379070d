"""Every word the synthetic generator can emit, in one place.

The generator builds all of its text (captions, long descriptions, referring expressions)
from the constants below, so the locally built tokenizers can cover it exactly:
:func:`all_words` lists every word, :func:`corpus_lines` gives sentences for training the
byte-level BPE of :mod:`.llm_tokenizer`.
"""
import re
from typing import Dict, List, Tuple

# name -> RGB fill. Saturated, mutually distant colours; backgrounds stay away from them.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 30, 30),
    'green': (30, 170, 60),
    'blue': (30, 80, 220),
    'yellow': (240, 210, 20),
    'purple': (140, 50, 180),
    'orange': (250, 130, 20),
}
SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star')
PLURALS: Dict[str, str] = {s: s + 's' for s in SHAPES}

# Size bins: (word, min extent, max extent) in pixels for a 256-pixel short side.
SIZE_BINS: Tuple[Tuple[str, int, int], ...] = (
    ('small', 22, 34),
    ('medium', 40, 58),
    ('large', 64, 110),
)
NUMBER_WORDS: Tuple[str, ...] = ('no', 'a', 'two', 'three', 'four', 'five', 'six')

# 3x3 grid cell names (row, col) used in long descriptions.
GRID_POSITIONS: Tuple[Tuple[str, ...], ...] = (
    ('top left', 'top middle', 'top right'),
    ('middle left', 'center', 'middle right'),
    ('bottom left', 'bottom middle', 'bottom right'),
)

# Plain / gradient colours (name, RGB). None of them is close to a shape colour.
PLAIN_COLOURS: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
    ('white', (250, 250, 250)),
    ('light gray', (200, 200, 200)),
    ('beige', (235, 225, 200)),
    ('pale blue', (200, 220, 240)),
    ('pale green', (210, 235, 210)),
    ('dark gray', (70, 70, 70)),
    ('black', (15, 15, 15)),
)

# Photos shipped inside the scikit-image wheel (no pooch download): file -> what it shows.
PHOTOS: Tuple[Tuple[str, str], ...] = (
    ('astronaut.png', 'an astronaut'),
    ('chelsea.png', 'a cat'),
    ('coffee.png', 'a cup of coffee'),
    ('rocket.jpg', 'a rocket on a launch pad'),
    ('brick.png', 'a brick wall'),
    ('grass.png', 'grass'),
    ('gravel.png', 'gravel'),
    ('camera.png', 'a man with a camera'),
    ('hubble_deep_field.jpg', 'distant galaxies in the night sky'),
    ('motorcycle_left.png', 'a motorcycle'),
    ('coins.png', 'old coins'),
    ('moon.png', 'the surface of the moon'),
)

# Relations between two objects: phrase used in expressions / descriptions.
RELATIONS: Tuple[str, ...] = ('left of', 'right of', 'above', 'below')
# The same relations as full sentences say them ("The red circle is to the left of ...").
SENTENCE_RELATIONS: Dict[str, str] = {'left of': 'to the left of', 'right of': 'to the right of',
                                      'above': 'above', 'below': 'below'}

# Fixed sentence pieces (every template used by .language).
CAPTION_PREFIXES: Tuple[str, ...] = ('', 'there is ', 'a picture of ', 'an image with ', 'we can see ')
CAPTION_PREFIXES_PLURAL: Tuple[str, ...] = ('', 'there are ', 'a picture of ', 'an image with ',
                                            'we can see ')
EMPTY_CAPTIONS: Tuple[str, ...] = ('an empty {bg}.', 'a {bg} with no shapes.', 'nothing but a {bg}.')
BACKGROUND_PHRASES: Tuple[str, ...] = (
    'plain {colour} background', 'gradient background from {colour} to {colour2}',
    'noisy {colour} background', 'background showing part of a photo of {photo}')
DESCRIPTION_TEMPLATES: Tuple[str, ...] = (
    'The image shows {count} on a {bg}.',
    'The image shows a {bg} with no shapes in it.',
    'There is nothing else in the picture.',
    'A {size} {name} is in the {position} of the image.',
    'The {name} is {relation} the {name2}.',
    'The {name} is partly covered by the {name2}.',
    'The {name} is larger than the {name2}.',
    'In total there are {number} shapes.',
    'Describe the image in detail.',
    'Describe the region in a phrase.',
)
EXPRESSION_TEMPLATES: Tuple[str, ...] = (
    'the {name}', '{name}', 'the {name} on the left', 'the {name} on the right',
    'the leftmost {name}', 'the rightmost {name}', 'the topmost {name}', 'the bottom {name}',
    'the upper {name}', 'the lower {name}', 'the {name} at the top', 'the {name} at the bottom',
    'the larger {name}', 'the smaller {name}', 'the largest {name}', 'the smallest {name}',
    'the big {name}', 'the little {name}',
    'the {name} {relation} the {name2}', 'the {name} that is {relation} the {name2}',
)
# Prompts other parts of llmvision send to LLMs (REC selector, captioner): kept in the corpus.
PROMPT_TEXT: Tuple[str, ...] = (
    'You are a helpful assistant.',
    'You are a helpful AI assistant, capable of understanding spatial information.',
    'In an image, there are 3 boxes:',
    "* In box 0: 'red circle' with xyxy coordinates '[12.0, 30.5, 60.0, 99.9]', with score 0.97,",
    "Which box is best matching 'the red circle' ? Answer with just the index of the best box. "
    'No explanation.',
    'system', 'user', 'assistant', 'human', 'gpt', '<image>',
)
# Short question/answer text for tiny LMM tests built on the same images.
QUESTION_TEXT: Tuple[str, ...] = (
    'What color is the circle?', 'What shape is the red object?', 'How many shapes are there?',
    'How many stars are in the image?', 'Is there a blue square in the image?', 'Yes.', 'No.',
    'Where is the green triangle?', 'Which object is the largest?', 'What is the background?',
    'Count the objects.', 'Answer the question using a single word or phrase.',
)
PUNCTUATION: str = '.,?!:;\'"()[]{}<>-_*/\\|+=%&#@$^~`'
DIGITS: str = '0123456789'

_WORD_RE = re.compile(r"[a-z]+|[0-9]|[^a-z0-9\s]")


def category_names() -> List[str]:
    """All category names, index = label id: ``'red circle', 'red square', ...`` (colour-major)."""
    return [f'{c} {s}' for c in COLOURS for s in SHAPES]


def plural(name: str) -> str:
    """Plural of a category name: ``'red circle' -> 'red circles'``."""
    colour, shape = name.rsplit(' ', 1)
    return f'{colour} {PLURALS[shape]}'


def split_words(text: str) -> List[str]:
    """Lower-cased words, single digits and single punctuation marks of ``text``."""
    return _WORD_RE.findall(text.lower())


def _fragments() -> List[str]:
    frags: List[str] = []
    frags += list(COLOURS) + list(SHAPES) + list(PLURALS.values())
    frags += [b[0] for b in SIZE_BINS] + list(NUMBER_WORDS)
    frags += [p for row in GRID_POSITIONS for p in row]
    frags += [n for n, _ in PLAIN_COLOURS] + [d for _, d in PHOTOS]
    frags += list(RELATIONS) + list(SENTENCE_RELATIONS.values())
    frags += list(CAPTION_PREFIXES) + list(CAPTION_PREFIXES_PLURAL)
    frags += list(EMPTY_CAPTIONS) + list(BACKGROUND_PHRASES) + list(DESCRIPTION_TEMPLATES)
    frags += list(EXPRESSION_TEMPLATES) + list(PROMPT_TEXT) + list(QUESTION_TEXT)
    frags += ['and', 'shapes', 'one', 'of']
    return frags


def all_words() -> List[str]:
    """Sorted unique lower-case words (letters only) the generator can emit, template slots removed."""
    words = set()
    for frag in _fragments():
        frag = re.sub(r'\{[a-z0-9_]+\}', ' ', frag)
        words.update(w for w in split_words(frag) if w.isalpha())
    return sorted(words)


def corpus_lines() -> List[str]:
    """Deterministic training text for the byte-level BPE: filled-in templates and prompts."""
    names = category_names()
    lines: List[str] = list(PROMPT_TEXT) + [DIGITS, PUNCTUATION]
    for frag in _fragments():
        lines.append(frag.replace('{', '').replace('}', ''))
    sizes = [b[0] for b in SIZE_BINS]
    positions = [p for row in GRID_POSITIONS for p in row]
    for i, name in enumerate(names):
        other = names[(i * 7 + 5) % len(names)]
        size = sizes[i % len(sizes)]
        pos = positions[i % len(positions)]
        rel = RELATIONS[i % len(RELATIONS)]
        lines.append(f'a {name} and two {plural(other)}.')
        lines.append(f'A {size} {name} is in the {pos} of the image.')
        lines.append(f'The {name} is {SENTENCE_RELATIONS[rel]} the {other}.')
        lines.append(f'the leftmost {name}')
        lines.append(f'There are {NUMBER_WORDS[2 + i % 5]} {plural(name)}.')
    return lines
