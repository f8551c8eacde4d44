"""Sentences over a closed vocabulary, in English and Spanish, with a held-out split by sentence.

Each language has open templates (numbers, names, colours, objects, places in combination: hundreds
of thousands of sentences) and a few fixed short commands. The held-out set is a fixed slice of the
open templates' sentences, chosen by a hash of the text, so held-out sentences are new combinations
of words the training set uses constantly. Fixed commands are never held out: holding one out would
take its words out of training altogether.

Numbers are written as digits, as whisper writes them; espeak-ng reads them out in the language.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

LANGUAGES = ("en", "es")
#: Share of the open templates' sentences reserved for evaluation.
HELD_OUT_PERCENT = 10


@dataclass(frozen=True)
class Sentence:
    language: str
    text: str


Template = Callable[[random.Random], str]


def _number(rng: random.Random) -> str:
    # Small numbers are the most common in speech; keep them frequent but cover 0-99.
    return str(rng.randrange(13) if rng.random() < 0.4 else rng.randrange(100))


# ---------------------------------------------------------------------------------------- English
_EN_NAMES = [
    "Anna",
    "Peter",
    "Maria",
    "John",
    "Lisa",
    "David",
    "Sarah",
    "Tom",
    "Emma",
    "Paul",
    "Laura",
    "Mark",
]
_EN_COLOURS = ["red", "blue", "green", "yellow", "black", "white", "brown", "orange"]
_EN_NOUNS = {
    "car": "cars",
    "ball": "balls",
    "book": "books",
    "cup": "cups",
    "chair": "chairs",
    "dog": "dogs",
    "cat": "cats",
    "bird": "birds",
    "box": "boxes",
    "key": "keys",
    "bag": "bags",
    "hat": "hats",
}
_EN_DEVICES = ["lights", "radio", "heater", "fan", "television", "music", "oven", "alarm"]
_EN_OPENABLE = ["door", "window", "garage", "box", "gate", "file"]
_EN_PLACES = [
    "on the table",
    "in the garden",
    "near the door",
    "under the bed",
    "in the kitchen",
    "behind the house",
    "in the car",
    "next to the window",
]
_EN_VERBS = ["bring", "take", "move", "find", "clean", "paint", "wash", "check"]
_EN_WANTS = ["wants", "needs", "has", "sees", "buys", "sells"]
_EN_ADJECTIVES = ["big", "small", "old", "new", "hot", "cold", "heavy", "empty", "clean", "broken"]
_EN_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_EN_DIRECTIONS = ["left", "right", "forward", "back"]
_EN_FIXED = [
    "Stop.",
    "Start.",
    "Yes.",
    "No.",
    "Cancel.",
    "Repeat that.",
    "Go back.",
    "Next.",
    "Help me.",
    "Thank you.",
    "Good morning.",
    "Good night.",
    "What time is it?",
    "How are you today?",
]


def _en_templates() -> list[Template]:
    c = random.Random.choice
    return [
        lambda r: f"Turn {c(r, ['on', 'off'])} the {c(r, _EN_DEVICES)}.",
        lambda r: f"{c(r, ['Open', 'Close'])} the {c(r, _EN_OPENABLE)}.",
        lambda r: f"Set the {c(r, ['timer', 'alarm'])} for {_number(r)} minutes.",
        lambda r: f"Call {c(r, _EN_NAMES)} in {_number(r)} minutes.",
        lambda r: f"The {c(r, _EN_COLOURS)} {c(r, list(_EN_NOUNS))} is {c(r, _EN_PLACES)}.",
        lambda r: f"I have {_number(r)} {c(r, list(_EN_NOUNS.values()))}.",
        lambda r: (
            f"{c(r, _EN_NAMES)} {c(r, _EN_WANTS)} {_number(r)} {c(r, _EN_COLOURS)} "
            f"{c(r, list(_EN_NOUNS.values()))}."
        ),
        lambda r: f"Please {c(r, _EN_VERBS)} the {c(r, _EN_COLOURS)} {c(r, list(_EN_NOUNS))}.",
        lambda r: f"Go {c(r, _EN_DIRECTIONS)} for {_number(r)} meters.",
        lambda r: f"What is {_number(r)} plus {_number(r)}?",
        lambda r: f"The {c(r, list(_EN_NOUNS))} {c(r, _EN_PLACES)} is {c(r, _EN_ADJECTIVES)}.",
        lambda r: f"Meet {c(r, _EN_NAMES)} on {c(r, _EN_DAYS)} at {_number(r)}.",
    ]


# ---------------------------------------------------------------------------------------- Spanish
_ES_NAMES = [
    "Ana",
    "Pedro",
    "María",
    "Juan",
    "Lucía",
    "Carlos",
    "Sofía",
    "Pablo",
    "Elena",
    "Diego",
    "Carmen",
    "Luis",
]
#: colour → (masculine singular, feminine singular, masculine plural, feminine plural)
_ES_COLOURS = {
    "rojo": ("rojo", "roja", "rojos", "rojas"),
    "azul": ("azul", "azul", "azules", "azules"),
    "verde": ("verde", "verde", "verdes", "verdes"),
    "amarillo": ("amarillo", "amarilla", "amarillos", "amarillas"),
    "negro": ("negro", "negra", "negros", "negras"),
    "blanco": ("blanco", "blanca", "blancos", "blancas"),
    "marrón": ("marrón", "marrón", "marrones", "marrones"),
    "naranja": ("naranja", "naranja", "naranjas", "naranjas"),
}
#: noun → (feminine?, plural)
_ES_NOUNS = {
    "coche": (False, "coches"),
    "libro": (False, "libros"),
    "perro": (False, "perros"),
    "gato": (False, "gatos"),
    "vaso": (False, "vasos"),
    "pájaro": (False, "pájaros"),
    "pelota": (True, "pelotas"),
    "taza": (True, "tazas"),
    "silla": (True, "sillas"),
    "caja": (True, "cajas"),
    "llave": (True, "llaves"),
    "bolsa": (True, "bolsas"),
}
_ES_DEVICES = [
    "la luz",
    "la radio",
    "el ventilador",
    "la televisión",
    "la calefacción",
    "la música",
    "el horno",
    "la alarma",
]
_ES_OPENABLE = ["la puerta", "la ventana", "el garaje", "la caja", "la verja", "el archivo"]
_ES_PLACES = [
    "en la mesa",
    "en el jardín",
    "cerca de la puerta",
    "debajo de la cama",
    "en la cocina",
    "detrás de la casa",
    "en el coche",
    "junto a la ventana",
]
_ES_VERBS = ["trae", "toma", "mueve", "busca", "limpia", "pinta", "lava", "revisa"]
_ES_WANTS = ["quiere", "necesita", "tiene", "ve", "compra", "vende"]
#: adjective → (masculine, feminine)
_ES_ADJECTIVES = {
    "grande": ("grande", "grande"),
    "pequeño": ("pequeño", "pequeña"),
    "viejo": ("viejo", "vieja"),
    "nuevo": ("nuevo", "nueva"),
    "caliente": ("caliente", "caliente"),
    "frío": ("frío", "fría"),
    "pesado": ("pesado", "pesada"),
    "vacío": ("vacío", "vacía"),
    "limpio": ("limpio", "limpia"),
    "roto": ("roto", "rota"),
}
_ES_DAYS = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
_ES_DIRECTIONS = ["a la izquierda", "a la derecha", "hacia adelante", "hacia atrás"]
_ES_FIXED = [
    "Para.",
    "Empieza.",
    "Sí.",
    "No.",
    "Cancela.",
    "Repite eso.",
    "Vuelve atrás.",
    "Siguiente.",
    "Ayúdame.",
    "Gracias.",
    "Buenos días.",
    "Buenas noches.",
    "¿Qué hora es?",
    "¿Cómo estás hoy?",
]


def _es_noun(r: random.Random) -> tuple[str, bool, str]:
    noun = r.choice(list(_ES_NOUNS))
    feminine, plural = _ES_NOUNS[noun]
    return noun, feminine, plural


def _es_colour(r: random.Random, feminine: bool, plural: bool) -> str:
    forms = _ES_COLOURS[r.choice(list(_ES_COLOURS))]
    return forms[2 * plural + feminine]


def _es_coloured_thing(r: random.Random) -> str:
    noun, feminine, _ = _es_noun(r)
    return f"{'la' if feminine else 'el'} {noun} {_es_colour(r, feminine, plural=False)}"


def _es_coloured_things(r: random.Random) -> str:
    _, feminine, plural = _es_noun(r)
    return f"{_number(r)} {plural} {_es_colour(r, feminine, plural=True)}"


def _es_described(r: random.Random) -> str:
    noun, feminine, _ = _es_noun(r)
    adjective = _ES_ADJECTIVES[r.choice(list(_ES_ADJECTIVES))][feminine]
    return f"{'La' if feminine else 'El'} {noun} {r.choice(_ES_PLACES)} está {adjective}."


def _capitalised(text: str) -> str:
    return text[0].upper() + text[1:]


def _es_templates() -> list[Template]:
    c = random.Random.choice
    return [
        lambda r: f"{c(r, ['Enciende', 'Apaga'])} {c(r, _ES_DEVICES)}.",
        lambda r: f"{c(r, ['Abre', 'Cierra'])} {c(r, _ES_OPENABLE)}.",
        lambda r: f"Programa {c(r, ['el temporizador', 'la alarma'])} para {_number(r)} minutos.",
        lambda r: f"Llama a {c(r, _ES_NAMES)} en {_number(r)} minutos.",
        lambda r: f"{_capitalised(_es_coloured_thing(r))} está {c(r, _ES_PLACES)}.",
        lambda r: f"Tengo {_number(r)} {_es_noun(r)[2]}.",
        lambda r: f"{c(r, _ES_NAMES)} {c(r, _ES_WANTS)} {_es_coloured_things(r)}.",
        lambda r: f"Por favor {c(r, _ES_VERBS)} {_es_coloured_thing(r)}.",
        lambda r: f"Camina {_number(r)} metros {c(r, _ES_DIRECTIONS)}.",
        lambda r: f"Calcula {_number(r)} más {_number(r)}.",
        _es_described,
        lambda r: f"Queda con {c(r, _ES_NAMES)} el {c(r, _ES_DAYS)} a las {_number(r)}.",
    ]


_TEMPLATES: dict[str, list[Template]] = {"en": _en_templates(), "es": _es_templates()}
_FIXED: dict[str, list[str]] = {"en": _EN_FIXED, "es": _ES_FIXED}
#: How often a training sentence is one of the fixed short commands.
_FIXED_SHARE = 0.08


def is_held_out(text: str) -> bool:
    """Whether an open-template sentence belongs to the evaluation slice (stable across runs)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 100 < HELD_OUT_PERCENT


def _open_sentence(language: str, rng: random.Random) -> str:
    return rng.choice(_TEMPLATES[language])(rng)


def training_sentence(language: str, rng: random.Random) -> Sentence:
    """A random sentence never in the held-out slice."""
    if rng.random() < _FIXED_SHARE:
        return Sentence(language, rng.choice(_FIXED[language]))
    while True:
        text = _open_sentence(language, rng)
        if not is_held_out(text):
            return Sentence(language, text)


def held_out_sentences(language: str, count: int, seed: int = 1234) -> list[Sentence]:
    """`count` distinct held-out sentences, the same ones for the same seed."""
    rng = random.Random(f"held-out/{language}/{seed}")
    found: dict[str, None] = {}
    while len(found) < count:
        text = _open_sentence(language, rng)
        if is_held_out(text):
            found[text] = None
    return [Sentence(language, text) for text in found]


def vocabulary(language: str, samples: int = 20_000, seed: int = 0) -> set[str]:
    """The words training sentences use (sampled; every word shows up well before 20 000 draws)."""
    rng = random.Random(seed)
    return {word for _ in range(samples) for word in words(training_sentence(language, rng).text)}


def words(text: str) -> list[str]:
    """Lower-case words without punctuation: what WER compares."""
    kept = "".join(ch.lower() if ch.isalnum() or ch.isspace() or ch == "'" else " " for ch in text)
    return kept.split()


def sentences(language: str, seed: int) -> Iterator[Sentence]:
    rng = random.Random(f"train/{language}/{seed}")
    while True:
        yield training_sentence(language, rng)
