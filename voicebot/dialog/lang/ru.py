"""Russian: digits, numbers and yes/no as the recognizer writes them, filler words, and the
words that say an answer is not over yet.

Whisper (base, multilingual) writes Cyrillic, and numbers as numerals ("4217", "4, 2, 1, 7",
"42") or as words ("четыре два один семь", "сорок два", "двести пять", "две тысячи триста").
Number words are read in the forms callers use for them: genders and the accusative of one
and two ("один"/"одна"/"одно"/"одну", "два"/"две"), "ноль" and "нуль", "тысяча"/"тысячи"/
"тысяч"/"тысячу". "ё" and "е" are the same letter everywhere here (recognizers write either).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from itertools import pairwise

from .base import (
    NUMERAL,
    Language,
    NumberChunk,
    answer_table,
    last_answer,
    scan_chunks,
    spell_out,
    split_numeral,
    split_words,
)

# Recognizers write "ё" or "е" for the same word: everything here is spelled with "е".
YO = str.maketrans({"ё": "е"})

UNITS = {
    "ноль": 0,
    "нуль": 0,
    "один": 1,
    "одна": 1,
    "одно": 1,
    "одну": 1,
    "два": 2,
    "две": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
}
TEENS = {
    "десять": 10,
    "одиннадцать": 11,
    "двенадцать": 12,
    "тринадцать": 13,
    "четырнадцать": 14,
    "пятнадцать": 15,
    "шестнадцать": 16,
    "семнадцать": 17,
    "восемнадцать": 18,
    "девятнадцать": 19,
}
TENS = {
    "двадцать": 20,
    "тридцать": 30,
    "сорок": 40,
    "пятьдесят": 50,
    "шестьдесят": 60,
    "семьдесят": 70,
    "восемьдесят": 80,
    "девяносто": 90,
}
HUNDREDS = {
    "сто": 100,
    "двести": 200,
    "триста": 300,
    "четыреста": 400,
    "пятьсот": 500,
    "шестьсот": 600,
    "семьсот": 700,
    "восемьсот": 800,
    "девятьсот": 900,
}
SCALES = {
    **dict.fromkeys(("тысяча", "тысячи", "тысяч", "тысячу"), 1_000),
    **dict.fromkeys(("миллион", "миллиона", "миллионов"), 1_000_000),
}
NUMBER_WORDS = frozenset({*UNITS, *TEENS, *TENS, *HUNDREDS, *SCALES})
# Hesitations are dropped before anything else, so "четыре э два" is a run.
HESITATIONS = frozenset("э ээ эээ эм ээм мм ммм хм гм ну".split())

_TOKEN = re.compile(rf"{NUMERAL}|[а-яa-z]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words and numerals, "ё" as "е"; hyphens and punctuation split words."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text.lower().translate(YO)):
        if token[0].isdigit():
            tokens.extend(split_numeral(token))
        elif token not in HESITATIONS:
            tokens.append(token)
    return tokens


def _is_numeral(token: str) -> bool:
    return token[:1].isdigit()


def _at(tokens: Sequence[str], i: int) -> str:
    return tokens[i] if i < len(tokens) else ""


def _group(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """Below a thousand in words: "сорок два", "двести пять", "сто двадцать", "семь"; a
    numeral only right before a scale word ("5 тысяч")."""
    token = _at(tokens, i)
    if _is_numeral(token) and token.isdigit() and _at(tokens, i + 1) in SCALES:
        return int(token), i + 1
    value, j = 0, i
    if token in HUNDREDS:
        value, j = HUNDREDS[token], j + 1
    token = _at(tokens, j)
    if token in TEENS:
        value, j = value + TEENS[token], j + 1
    elif token in TENS:
        value, j = value + TENS[token], j + 1
        unit = _at(tokens, j)
        if UNITS.get(unit, 0) > 0:
            value, j = value + UNITS[unit], j + 1
    elif token in UNITS and (j == i or UNITS[token] > 0):
        # "сто ноль" is a hundred and then a zero digit, not one number.
        value, j = value + UNITS[token], j + 1
    return (value, j) if j > i else None


def _cardinal(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """A cardinal number in words up to the millions, greedily from ``i``: "тысяча" alone is
    1000, "две тысячи триста" 2300, "три миллиона пятьсот тысяч" 3 500 000."""
    first = _group(tokens, i)
    if first is None and _at(tokens, i) not in SCALES:
        return None
    group, j = first if first is not None else (1, i)
    total, last_scale = 0, None
    while _at(tokens, j) in SCALES:
        scale = SCALES[_at(tokens, j)]
        if last_scale is not None and scale >= last_scale:
            break
        total, last_scale, j = total + group * scale, scale, j + 1
        following = _group(tokens, j)
        after = _at(tokens, j)
        if following is None and SCALES.get(after, scale) < scale:
            following = (1, j)  # "миллион тысяча"
        if following is None:
            # "две тысячи 300": a numeral below the scale completes the number.
            if after.isdigit() and not after.startswith("0") and int(after) < scale:
                return total + int(after), j + 1
            return total, j
        group, j = following
    return total + group, j


def _chunk_at(tokens: Sequence[str], i: int) -> NumberChunk | None:
    token = tokens[i]
    if _is_numeral(token):
        if token.isdigit() and _at(tokens, i + 1) not in SCALES:
            return NumberChunk(i, i + 1, token)
        if not token.isdigit():
            return NumberChunk(i, i + 1, token.replace(".", ""), whole=False)
    cardinal = _cardinal(tokens, i)
    if cardinal is None:
        return None
    value, end = cardinal
    return NumberChunk(i, end, str(value))


def _chunks(text: str) -> list[NumberChunk]:
    return scan_chunks(tokenize(text), _chunk_at)


def parse_digits(text: str) -> str | None:
    """Every digit the caller said, in order, as a string; None when there is none.

    "четыре два один семь", "4, 2, 1, 7" → "4217"; "сорок два" → "42"; "двадцать один ноль
    пять" → "2105"; "сто" → "100". Every other word ("мой номер", "пожалуйста") is ignored.
    """
    digits = "".join(chunk.digits for chunk in _chunks(text))
    return digits or None


def parse_number(text: str) -> int | None:
    """The first whole number in the text, in words or digits, up to the millions.

    "сорок два" → 42, "двести пять" → 205, "две тысячи триста" → 2300, "2,500" → 2500.
    Number words said one after the other read as digits ("четыре два" → 42, "девятнадцать
    восемьдесят четыре" → 1984). None when there is no number, or when the first one is not
    whole ("2.5").
    """
    chunks = _chunks(text)
    if not chunks:
        return None
    run = [chunks[0]]
    for chunk in chunks[1:]:
        if chunk.start != run[-1].end:
            break
        run.append(chunk)
    if not all(chunk.whole for chunk in run):
        return None
    return int("".join(chunk.digits for chunk in run))


# -- yes / no -------------------------------------------------------------------------------

_YES_PHRASES = (
    "да",
    "ага",
    "угу",
    "конечно",
    "верно",
    "правильно",
    "точно",
    "именно",
    "так точно",
    "так и есть",
    "хорошо",
    "ладно",
    "согласен",
    "согласна",
    "разумеется",
    "естественно",
    "безусловно",
    "подтверждаю",
    "ок",
    "окей",
    "ok",
    "okay",
)
_NO_PHRASES = (
    "нет",
    "неа",
    "не а",
    "нету",
    "неверно",
    "неправильно",
    "не надо",
    "не нужно",
    "не хочу",
    "никак нет",
    "ни в коем случае",
    "отнюдь",
    # "Да нет" is a no: "да" only softens it.
    "да нет",
)
# Said, but no answer: "не знаю", "да не знаю" (which is not a yes).
_NEUTRAL_PHRASES = ("не знаю", "да не знаю", "не уверен", "не уверена", "может быть")
# "не" before one of these is a no: "не верно", "не так", "не согласна".
_NEGATABLE = frozenset(
    "верно правильно точно так то это согласен согласна подтверждаю совсем".split()
)


_ANSWERS = answer_table(_YES_PHRASES, _NO_PHRASES, _NEUTRAL_PHRASES)


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the caller said neither.

    Yes: да, ага, угу, конечно, верно, правильно, точно, хорошо, согласен …
    No: нет, неа, не надо, не нужно, неверно, не верно, неправильно, не так, да нет …
    When the text holds both, the **last** clear answer counts, because callers correct
    themselves ("нет, то есть да" → True; "да… нет, неправильно" → False). Multi-word phrases
    are matched as a whole: "да нет" is a no; "не знаю" and "да не знаю" are no answer.
    """
    words = [w for w in tokenize(text) if not w[0].isdigit()]
    return last_answer(words, _ANSWERS, _negation)


def _negation(words: Sequence[str], i: int) -> int | None:
    """«не верно», «не так» (ends at the negated word), or None."""
    return i + 1 if words[i] == "не" and _at(words, i + 1) in _NEGATABLE else None


_DIGIT_WORDS = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
# Spelled with "ё", as a synthesizer should read them.
_SPOKEN_SYMBOLS = {"+": "плюс", "*": "звёздочка", "#": "решётка"}


def _digit_word(char: str) -> str:
    return _DIGIT_WORDS[unicodedata.digit(char)]


def speak_digits(value: str) -> str:
    """Text for the synthesizer to read digit by digit: "4217" → "четыре два один семь".

    Letters are read one by one too ("ab12" → "A B один два"); ``+``, ``*`` and ``#`` are
    spoken ("плюс", "звёздочка", "решётка"); any other character separates groups, read with
    a short pause: "555-0100" → "пять пять пять, ноль один ноль ноль".
    """
    return spell_out(value, _digit_word, _SPOKEN_SYMBOLS)


# -- menu matching --------------------------------------------------------------------------

# Hesitations, politeness and the lead-ins of a request ("я бы хотел", "мне можно"): a menu
# phrase is found in what is left. Not "да"/"нет" (answers) nor "не" (it turns one around).
FILLER_WORDS = frozenset(
    "э ээ эээ эм мм ммм хм а ну вот так это пожалуйста будьте добры "
    "мне я бы хотел хотела хотелось хочу можно".split()
)
# What recognizers write for a spoken "да"/"нет" more often than the word itself.
SAME_WORD = {"ага": "да", "угу": "да", "неа": "нет"}


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation, "ё" as "е", colloquial да/нет as "да"/"нет"."""
    return split_words(text, SAME_WORD, YO)


# -- the end of an answer -------------------------------------------------------------------

# A number ending like this is most likely on its way ("две тысячи … триста"). Round
# numbers ("сорок", "сто", "двести", "тысяча") wait for their rest anyway.
NUMBER_CONTINUING = frozenset(SCALES)

# Words that almost never end a finished answer: prepositions, conjunctions, "бы", a
# possessive, a wish or a need without its object ("я хотел бы", "соедините с", "мне нужно").
OPEN_ENDINGS = frozenset(
    "с со в во на по к ко о об обо от до из за для без у про через над под при перед между "
    "после и или но а потому поэтому чтобы если не ни бы "
    "мой моя мое мои мою моего моей ваш ваша ваше ваши вашу вашего вашей наш наша наше наши "
    "свой своя свое свои свою этот эта эти "
    "хотел хотела хотели хочу хотим хотелось можно нужно надо нужен нужна нужны мне могу "
    "можете должен должна "
    "соедините соедини соединить переключите переключить позовите поговорить узнать сказать "
    "скажите подскажите уточнить "
    "э ээ эээ эм мм ммм ну".split()
)


def ends_open(text: str) -> bool:
    """True when the transcript stops on a word that needs more after it."""
    words = normalize(text)
    return bool(words) and words[-1] in OPEN_ENDINGS


# lacks_verb: a conservative heuristic. True only when no word of the transcript could be a
# verb or a predicate. Saying False when unsure keeps the behaviour every language had before
# (the turn model judges the answer); saying True wrongly only makes the caller wait the
# silence ceiling. So every verb-looking ending counts as a verb, and a noun that merely looks
# like one ("стол", "часть") costs nothing worse than a judged turn.

# Words that make a clause on their own, without a verb-like ending.
_PREDICATES = frozenset(
    "есть нет нету можно нельзя надо нужно нужен нужна нужны хочу могу может могут прошу жду "
    "иду еду буду будет будут был была было были это вот да спасибо хорошо ладно конечно "
    "готов готова готово готовы пора жаль ясно понятно".split()
)
# Endings of finite verbs, infinitives, imperatives and short participles: past (-л, -ла,
# -ло, -ли), reflexive (-ся, -сь), present and future (-ет, -ит, -ут, -ют, -ат, -ят, -ешь,
# -ишь, -ем, -им, -ете, -ите), first person (-аю, -яю, -ею), imperative (-йте, -ьте, -ай,
# -яй), infinitive (-ть, -ти, -чь) and short passive participles (-ана, -ено, -аны …).
_VERB_ENDING = re.compile(
    r"(?:л|ла|ло|ли|ся|сь|ет|ит|ут|ют|ат|ят|ешь|ишь|ем|им|ете|ите|аю|яю|ею|йте|ьте|ай|яй|ть|ти|чь"
    r"|ан|ана|ано|аны|ен|ена|ено|ены|ян|яна|яно|яны|ыт|ыта|ыто|ыты)$"
)
# Words (or a word without its last letter: "счете", "кредите") whose ending looks like a
# verb's but which are not verbs, common in calls: without them "мой счет", "режим работы",
# "с моим заказом" would always be judged as if a clause.
_NOT_VERBS = frozenset(
    "счет ответ билет пакет привет совет предмет интернет кабинет бюджет лет кредит депозит "
    "лимит визит реквизит сайт прием объем проблем режим банкомат автомат результат формат "
    "адресат брат минут маршрут институт валют стол пол зал канал сигнал филиал вокзал "
    "материал персонал отдел раздел журнал портал дело число рубли запись подпись надпись "
    "весь здесь часть область власть сеть путь мать "
    "или если ли вся всем чем тем нем моим твоим своим нашим вашим этим каким таким другим "
    "моем твоем своем нашем вашем".split()
)
# Nouns in -ость: "стоимость", "задолженности" end like infinitives.
_NOUN_ENDING = re.compile(r"ост[ьи]$")
# Shorter words are prepositions, pronouns and particles ("на", "мне", "его"), or in one of
# the lists above.
_MIN_VERB_LENGTH = 3
_CYRILLIC = re.compile("[а-я]")


def _could_be_verb(word: str) -> bool:
    if word in _PREDICATES:
        return True
    if len(word) < _MIN_VERB_LENGTH or word in NUMBER_WORDS or _NOUN_ENDING.search(word):
        return False
    if word in _NOT_VERBS or word[:-1] in _NOT_VERBS:
        return False
    return _VERB_ENDING.search(word) is not None


# "у меня" + a noun is "I have …", a whole clause without a verb ("у меня вопрос").
_HAVING = frozenset("меня тебя нас вас него нее них".split())


def lacks_verb(text: str) -> bool:
    """True when the Cyrillic words hold nothing that could be a verb: "моя посылка", "номер
    договора", "по поводу заказа" (the first halves of answers with a pause in them); False
    for "моя посылка не пришла", "я потерял карту", "карта заблокирована", "мне нужен
    оператор", "у меня вопрос", and for a transcript with no Cyrillic word (nothing to
    judge)."""
    cyrillic = [word for word in normalize(text) if _CYRILLIC.search(word)]
    if any(a == "у" and b in _HAVING for a, b in pairwise(cyrillic)):
        return False
    return bool(cyrillic) and not any(_could_be_verb(word) for word in cyrillic)


RUSSIAN = Language(
    code="ru",
    parse_digits=parse_digits,
    parse_number=parse_number,
    parse_yes_no=parse_yes_no,
    speak_digits=speak_digits,
    normalize=normalize,
    filler_words=FILLER_WORDS,
    ends_open=ends_open,
    lacks_verb=lacks_verb,
    number_continuing=NUMBER_CONTINUING,
    yes_no_phrases=("да", "нет"),
    meaning_carriers=("мне нужно {phrase}", "{phrase}, пожалуйста", "скажите {phrase}"),
)
