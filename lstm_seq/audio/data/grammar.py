"""A small English command grammar for the synthetic speech corpus.

Sentences such as "turn left at the third red door" or "don't put the green cup on the table",
drawn from templates over word lists (commands, numbers, colours, objects, places), and short utterances of
1–3 words ("stop", "third", "five minutes"; :func:`sample_short`), so that a recogniser whose LM is estimated on
the corpus does not force an isolated word into a sentence. Everything is lower case a-z, space and
apostrophe, the character vocabulary of the acoustic model.
"""

from __future__ import annotations

import random

DIRECTIONS = ("left", "right", "up", "down", "forward", "back", "north", "south", "east", "west")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
NUMBERS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred",
)  # fmt: skip
COLOURS = (
    "red", "green", "blue", "yellow", "black", "white", "orange", "purple",
    "pink", "brown", "grey", "silver", "golden", "dark",
)  # fmt: skip
OBJECTS = (
    "door", "box", "cup", "chair", "table", "lamp", "book", "window", "bottle", "key",
    "bag", "phone", "clock", "ball", "plate", "bowl", "shoe", "hat", "pen", "card",
    "bell", "light", "car", "bike", "coat", "glass", "knife", "spoon", "basket", "ladder",
)  # fmt: skip
PLACES = (
    "kitchen", "garden", "office", "station", "school", "library", "market", "bridge", "river",
    "hospital", "church", "hotel", "garage", "bedroom", "bathroom", "hallway", "corner",
    "park", "harbour", "airport", "museum", "bakery", "tower", "village", "square",
)  # fmt: skip
PREPOSITIONS = ("on", "under", "behind", "near", "beside", "inside", "above", "below")
TIMES = ("seconds", "minutes", "hours", "days")
ADVERBS = ("quickly", "slowly", "carefully", "quietly", "now", "again", "later", "today", "tomorrow")
SIZES = ("big", "small", "old", "new", "tall", "short", "heavy", "light")
COMMANDS = ("stop", "go", "wait", "yes", "no", "cancel", "pause", "help", "repeat", "continue")

# Each template is a list of slots: a literal word/phrase or a word-list name.
_LISTS: dict[str, tuple[str, ...]] = {
    "DIR": DIRECTIONS,
    "ORD": ORDINALS,
    "NUM": NUMBERS,
    "COL": COLOURS,
    "OBJ": OBJECTS,
    "PLACE": PLACES,
    "PREP": PREPOSITIONS,
    "TIME": TIMES,
    "ADV": ADVERBS,
    "SIZE": SIZES,
    "CMD": COMMANDS,
}
TEMPLATES: tuple[str, ...] = (
    "turn DIR at the ORD COL OBJ",
    "go to the PLACE and pick up the COL OBJ",
    "put the COL OBJ PREP the OBJ",
    "move NUM steps DIR",
    "open the OBJ in the PLACE",
    "don't touch the SIZE COL OBJ",
    "set a timer for NUM TIME",
    "take the ORD road to the PLACE",
    "where is the COL OBJ",
    "bring me NUM COL OBJ please",
    "it's the ORD OBJ PREP the PLACE",
    "walk ADV to the PLACE",
    "show me the SIZE OBJ near the PLACE",
    "we'll meet at the PLACE in NUM TIME",
    "close the OBJ and turn DIR",
    "paint the OBJ COL ADV",
    "find the PLACE north of the PLACE",
    "drive NUM miles DIR then stop",
    "can you see the COL OBJ PREP the OBJ",
    "i can't find my SIZE OBJ",
    "call the PLACE at NUM o'clock",
    "the ORD OBJ is COL",
    "leave the OBJ at the PLACE ADV",
    "count NUM COL OBJ",
)
# Short utterances (1-3 words): a command, a word alone, a number with its unit.
SHORT_TEMPLATES: tuple[str, ...] = (
    "CMD",
    "CMD",
    "CMD now",
    "CMD please",
    "NUM",
    "NUM",
    "ORD",
    "ORD",
    "the ORD",
    "DIR",
    "turn DIR",
    "go DIR",
    "NUM TIME",
    "NUM TIME",
    "NUM NUM",
    "NUM NUM NUM",
    "NUM o'clock",
    "at NUM",
    "COL",
    "the COL OBJ",
    "the PLACE",
    "ADV",
)


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    words: set[str] = set()
    for template in TEMPLATES + SHORT_TEMPLATES:
        for slot in template.split():
            words.update(_LISTS.get(slot, (slot,)))
    return words


def sample_sentence(rng: random.Random) -> str:
    """One sentence, drawn with ``rng`` (deterministic for a seeded ``random.Random``)."""
    template = rng.choice(TEMPLATES)
    return " ".join(rng.choice(_LISTS[s]) if s in _LISTS else s for s in template.split())


def sample_short(rng: random.Random) -> str:
    """One short utterance of 1–3 words (a command, a number, an ordinal, "five minutes", …), drawn with ``rng``."""
    template = rng.choice(SHORT_TEMPLATES)
    return " ".join(rng.choice(_LISTS[s]) if s in _LISTS else s for s in template.split())


def sample_utterance(rng: random.Random, short_fraction: float) -> str:
    """A short utterance (:func:`sample_short`) with probability ``short_fraction``, else a sentence."""
    return sample_short(rng) if rng.random() < short_fraction else sample_sentence(rng)
