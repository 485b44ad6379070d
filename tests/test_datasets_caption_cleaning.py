"""LLMDet's caption-target cleaning: remove_speculative_clauses (long captions), clean_phrase (regions)."""
import pytest

from llmvision.datasets.caption_cleaning import clean_phrase, remove_speculative_clauses


@pytest.mark.parametrize('text,expected', [
    # the clause with the guessing word goes, the rest of the sentence stays
    ('A dog runs on the grass, possibly chasing a ball. The sky is blue.', 'A dog runs on the grass. The sky is blue.'),
    # negations (' no ', ' not ') count as speculative: the whole sentence goes
    ('There is no cat in the image. A red car is parked.', 'A red car is parked.'),
    # a sentence reduced to a prepositional phrase is dropped
    ('It seems to be a sunny day. In the corner, probably a bench.', ''),
    ('The man appears to be happy, smiling at the camera, and holding a cup.',
     'smiling at the camera, and holding a cup.'),
    # a keyword inside another word is not a clause match, but the sentence still gets its full stop
    ('The rabbit may disappear', 'The rabbit may disappear.'),
    # case-sensitive, as released: a capitalised keyword at the sentence start is kept
    ('Maybe a cat.', 'Maybe a cat.'),
    ('No speculation here.', 'No speculation here.'),
])
def test_remove_speculative_clauses(text, expected):
    assert remove_speculative_clauses(text) == expected


@pytest.mark.parametrize('phrase,expected', [
    ('the two red circles', 'Red circles.'), ('a dog', 'Dog.'), ('3 people', 'People.'),
    ('An apple.', 'Apple.'), ('Blue square', 'Blue square.'), ('one', 'One.'), ('the', 'The.'),
    ('  the  10 large   trucks ', 'Large trucks.'), ('', ''),
])
def test_clean_phrase(phrase, expected):
    assert clean_phrase(phrase) == expected
