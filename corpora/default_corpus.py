"""The embedded default corpus: a small English written by a seeded grammar, not copied from anywhere.

`nlprec embed train` uses it when the user names no corpus, so a first run needs no download
and shows in seconds that the vectors mean something. The grammar is built for that: each
category (pets, farm and wild animals, fruits, dishes, drinks, colours, countries with their
capitals and languages, professions with their tools and workplaces, numbers, days, months,
family and royal roles in male/female pairs) has its own contexts, so words of one category
become neighbours (cat -> dog, rabbit; paris -> berlin, rome). Relations use shared templates
so their offsets line up: gendered words always come with he/his/him or she/her, royal words
with throne and crown, capitals with "capital of" their country and its language, hence
man : king :: woman : queen and france : paris :: germany : berlin.

`generate_text()` returns the same text for the same seed on every CPython 3.10+ (Python's
`random.Random` with an int seed); `default_corpus_path()` writes it once into the cache.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from nlprec.data.public_datasets import cache_dir
from nlprec.io import atomic_write, sha256_file

SEED = 1234  # seed of the grammar's random choices
N_SENTENCES = 60_000  # lines in the corpus: 499,981 tokens, 421 distinct words
CORPUS_VERSION = 1  # bump with any grammar change; part of the cached file name
# sha256 of generate_text() with the defaults; tests/corpora keeps it in step with the grammar.
CORPUS_SHA256 = "7432d1e4750dd441e752a7e173c234649e400a98d922a47c045f71822599f372"

# Probe words whose nearest neighbours show the categories, for the CLI to print after training.
DEFAULT_PROBES = ("cat", "paris", "king", "apple", "red", "doctor", "monday", "three")
# a : b :: c : d, i.e. b - a + c should be nearest to d.
DEFAULT_ANALOGIES = (
    ("man", "king", "woman", "queen"),
    ("france", "paris", "germany", "berlin"),
    ("brother", "sister", "father", "mother"),
    ("italy", "italian", "spain", "spanish"),
    ("carpenter", "hammer", "painter", "brush"),
)

COUNTRIES = (  # (country, capital, language)
    ("france", "paris", "french"), ("germany", "berlin", "german"), ("italy", "rome", "italian"),
    ("spain", "madrid", "spanish"), ("japan", "tokyo", "japanese"), ("china", "beijing", "chinese"),
    ("russia", "moscow", "russian"), ("greece", "athens", "greek"), ("portugal", "lisbon", "portuguese"),
    ("egypt", "cairo", "arabic"), ("poland", "warsaw", "polish"), ("sweden", "stockholm", "swedish"),
    ("norway", "oslo", "norwegian"), ("turkey", "ankara", "turkish"), ("netherlands", "amsterdam", "dutch"),
    ("england", "london", "english"), ("hungary", "budapest", "hungarian"), ("finland", "helsinki", "finnish"),
    ("korea", "seoul", "korean"), ("india", "delhi", "hindi"),
)
ROYALS = (("king", "queen"), ("prince", "princess"))  # (male, female)
FAMILY = (
    ("father", "mother"), ("son", "daughter"), ("brother", "sister"), ("husband", "wife"),
    ("uncle", "aunt"), ("nephew", "niece"), ("grandfather", "grandmother"),
)
COMMONERS = (("man", "woman"), ("boy", "girl"))
PRONOUNS = (("he", "his", "him"), ("she", "her", "her"))  # by gender: subject, possessive, object
PETS = ("cat", "dog", "rabbit", "hamster", "parrot")
FARM_ANIMALS = ("horse", "cow", "sheep", "pig", "goat", "chicken", "donkey", "duck")
WILD_ANIMALS = ("lion", "tiger", "elephant", "wolf", "bear", "fox", "giraffe", "monkey")
FRUITS = (  # (fruit, its colour)
    ("apple", "red"), ("banana", "yellow"), ("pear", "green"), ("grape", "purple"), ("cherry", "red"),
    ("lemon", "yellow"), ("peach", "orange"), ("plum", "purple"), ("mango", "orange"), ("melon", "green"),
)
DISHES = ("bread", "cheese", "rice", "pasta", "soup", "cake", "salad", "pizza", "sandwich", "eggs")
DRINKS = ("tea", "coffee", "milk", "juice", "water", "wine")
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "purple", "brown", "pink", "grey", "orange")
PROFESSIONS = (  # (profession, tool, workplace)
    ("doctor", "stethoscope", "hospital"), ("nurse", "bandage", "clinic"), ("teacher", "chalk", "school"),
    ("carpenter", "hammer", "workshop"), ("painter", "brush", "studio"), ("chef", "knife", "kitchen"),
    ("farmer", "tractor", "farm"), ("writer", "pen", "library"), ("pilot", "plane", "airport"),
    ("tailor", "needle", "shop"), ("gardener", "shovel", "garden"), ("fisherman", "net", "harbour"),
    ("photographer", "camera", "gallery"), ("programmer", "computer", "office"), ("mechanic", "wrench", "garage"),
    ("baker", "oven", "bakery"),
)
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)
OBJECTS = ("books", "chairs", "apples", "letters", "coins", "cups", "windows", "trees")  # things to count

# Templates per group. Slots: {p} person, {he} {his} {him} its pronouns.
KING_QUEEN = (
    "the {p} sat on the throne and {he} ruled the kingdom",
    "the {p} wore {his} golden crown in the palace",
    "everyone in the kingdom obeyed the {p} and loved {him}",
    "the old {p} ruled wisely and {his} people were happy",
)
PRINCE_PRINCESS = (
    "the young {p} will inherit the throne when {he} grows up",
    "the {p} rode {his} horse to the castle",
    "the {p} is the heir to the crown and {he} studies every day",
)
FAMILY_TEMPLATES = (
    "my {p} lives in a small house and {he} has a garden",
    "the {p} came home late and {he} was tired",
    "the {p} cooked dinner for the family and {he} set the table",
    "we visited the {p} on sunday and {he} told us {his} stories",
    "the {p} hugged the children and {he} smiled",
)
PAIR_CONTEXT = {  # a phrase setting each pair apart from the others, shared by both genders
    "father": "a parent", "son": "a child", "brother": "a sibling", "husband": "a spouse",
    "uncle": "an adult relative", "nephew": "a young relative", "grandfather": "a grandparent",
    "man": "an adult", "boy": "a pupil", "king": "the monarch", "prince": "the heir",
}
COMMONER_TEMPLATES = (
    "the {p} walked down the street and {he} bought a newspaper",
    "a tall {p} stood at the door with {his} umbrella",
    "the {p} read a book in {his} garden",
    "the {p} said that {he} was hungry",
    "the {p} waved at {his} neighbour",
)


def _person(rng: random.Random, pairs: tuple[tuple[str, str], ...], templates: tuple[str, ...]) -> str:
    """A sentence about one gendered person, always with the pronouns of that gender."""
    pair = rng.choice(pairs)
    gender = rng.randrange(2)
    he, his, him = PRONOUNS[gender]
    sentence = rng.choice(templates).format(p=pair[gender], he=he, his=his, him=him)
    if rng.random() < 0.6:  # the pair's own context phrase, shared by both genders
        sentence += f" as {PAIR_CONTEXT[pair[0]]}"
    return sentence


def _royal(rng: random.Random) -> str:
    """King/queen rule from the throne; prince/princess will inherit it."""
    if rng.random() < 0.6:
        return _person(rng, ROYALS[:1], KING_QUEEN)
    return _person(rng, ROYALS[1:], PRINCE_PRINCESS)


def _family(rng: random.Random) -> str:
    """Family roles at home."""
    return _person(rng, FAMILY, FAMILY_TEMPLATES)


def _commoner(rng: random.Random) -> str:
    """Men, women, boys and girls in everyday scenes."""
    return _person(rng, COMMONERS, COMMONER_TEMPLATES)


def _country(rng: random.Random) -> str:
    """Countries, their capitals and languages; capitals travel to capitals, countries border countries."""
    country, capital, language = rng.choice(COUNTRIES)
    other_country, other_capital, _ = rng.choice(COUNTRIES)
    return rng.choice((
        f"{capital} is the capital of {country}",
        f"the capital of {country} is {capital}",
        f"people in {country} speak {language}",
        f"in {capital} most people speak {language}",
        f"{language} is the language of {country}",
        f"{country} is a beautiful country with many mountains",
        f"we travelled across {country} by train",
        f"{country} shares a border with {other_country}",
        f"{capital} is a big city with many museums",
        f"the train from {capital} to {other_capital} was late",
        f"the streets of {capital} are busy at night",
        f"she learned {language} before she moved to {capital}",
        f"the government of {country} meets in {capital}",
    ))


def _animal(rng: random.Random) -> str:
    """Pets at home, farm animals in the barn, wild animals in the zoo and the forest."""
    group, templates = rng.choice((
        (PETS, ("my {a} sleeps on the sofa", "we feed our {a} every evening", "the {a} played in the garden",
                "the children love their little {a}", "the {a} chased the {b} around the house")),
        (FARM_ANIMALS, ("the farmer feeds the {a} in the barn", "the {a} eats grass in the field",
                        "the {a} and the {b} live on the farm", "we heard the {a} from the barn")),
        (WILD_ANIMALS, ("in the zoo we saw a {a}", "the wild {a} lives in the forest",
                        "a hungry {a} hunted at night", "the {a} and the {b} live in the jungle")),
    ))
    return rng.choice(templates).format(a=rng.choice(group), b=rng.choice(group))


def _food(rng: random.Random) -> str:
    """Fruits (with their colours), dishes and drinks at meals."""
    fruit, colour = rng.choice(FRUITS)
    dish, drink = rng.choice(DISHES), rng.choice(DRINKS)
    return rng.choice((
        f"she ate a {fruit} after lunch",
        f"the {fruit} was ripe and sweet",
        f"we picked a {fruit} from the tree",
        f"a ripe {fruit} is {colour}",
        f"he cooked {dish} for dinner",
        f"we had {dish} and {drink} for lunch",
        f"i bought fresh {dish} at the market",
        f"she drank a cup of {drink}",
        f"there is a glass of {drink} on the table",
    ))


def _colour(rng: random.Random) -> str:
    """Colours of clothes, walls and cars."""
    colour, other = rng.choice(COLOURS), rng.choice(COLOURS)
    return rng.choice((
        f"she wore a {colour} dress",
        f"he painted the wall {colour}",
        f"the {colour} car is parked outside",
        f"my favourite colour is {colour}",
        f"the flag is {colour} and {other}",
    ))


def _profession(rng: random.Random) -> str:
    """Each profession with its tool and its workplace."""
    job, tool, place = rng.choice(PROFESSIONS)
    he, his, _ = PRONOUNS[rng.randrange(2)]
    return rng.choice((
        f"the {job} works at the {place}",
        f"the {job} picked up {his} {tool}",
        f"every {job} needs a good {tool}",
        f"the {job} used the {tool} all day",
        f"the {job} went to the {place} early in the morning",
        f"at the {place} the {job} said that {he} needed a new {tool}",
        f"a {job} cannot work without a {tool}",
        f"the {tool} of the {job} is kept in the {place}",
    ))


def _number(rng: random.Random) -> str:
    """Counting, sums and clock times."""
    a, b = rng.randrange(1, 7), rng.randrange(1, 7)
    n = rng.randrange(1, 12)
    return rng.choice((
        f"{NUMBERS[a - 1]} plus {NUMBERS[b - 1]} makes {NUMBERS[a + b - 1]}",
        f"the shop opens at {NUMBERS[n - 1]} o'clock",
        f"there are {NUMBERS[n]} {rng.choice(OBJECTS)} in the room",
        f"after {NUMBERS[n - 1]} comes {NUMBERS[n]}",
    ))


def _calendar(rng: random.Random) -> str:
    """Days of the week and months of the year, in order."""
    d, m = rng.randrange(7), rng.randrange(12)
    return rng.choice((
        f"on {DAYS[d]} we went to the market",
        f"the day after {DAYS[d - 1]} is {DAYS[d]}",
        f"every {DAYS[d]} morning she goes running",
        f"my birthday is in {MONTHS[m]}",
        f"{MONTHS[m]} comes after {MONTHS[m - 1]}",
        f"the holidays start in {MONTHS[m]}",
    ))


# (sentence maker, relative weight): people and places get most lines, as the analogies need.
GRAMMAR: tuple[tuple[Callable[[random.Random], str], int], ...] = (
    (_royal, 10), (_family, 14), (_commoner, 8), (_country, 24), (_animal, 12),
    (_food, 10), (_colour, 5), (_profession, 10), (_number, 4), (_calendar, 4),
)


def generate_text(seed: int = SEED, n_sentences: int = N_SENTENCES) -> str:
    """The corpus: `n_sentences` lower-case ASCII lines, each ending in "\\n", the same for a seed."""
    rng = random.Random(seed)
    makers = [maker for maker, _ in GRAMMAR]
    weights = [weight for _, weight in GRAMMAR]
    chosen = rng.choices(makers, weights=weights, k=n_sentences)
    return "".join(maker(rng) + "\n" for maker in chosen)


def default_corpus_path() -> Path:
    """Path of the default corpus in the cache, generating it there (atomically) when absent or altered."""
    path = cache_dir() / "nlprec-default" / f"default-v{CORPUS_VERSION}.txt"
    if path.is_file() and sha256_file(path) == CORPUS_SHA256:
        return path
    with atomic_write(path) as out:
        out.write(generate_text().encode("ascii"))
    return path
