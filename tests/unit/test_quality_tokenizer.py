"""The English word tokenizer gives datatrove's words and sentence counts exactly.

datatrove 0.10 splits English with spaCy (`load_word_tokenizer("en")` is a SpaCyTokenizer); ours
memoizes spaCy's rules per whitespace chunk (filters/english.py). Checked here on tricky strings,
on every distinct chunk of the real English parity set, and on its documents and lines.
"""

from __future__ import annotations

import re

import pytest
import spacy
from datatrove.utils.text import split_into_sentences, split_into_words
from datatrove.utils.word_tokenizers import load_word_tokenizer

from gristmill.filters.english import EnglishTokenizer
from gristmill.filters.textsplit import SplitText

from support.quality_corpus import TEST_CAPS, english_corpus

TRICKY = [
    "Don't stop: it's 3.5% of $10... 'quoted' gonna e-mail http://x.com/a?b=c (yes) U.S. Mr. Smith",
    "The ''Oxford English Dictionary'' traces [[Ephraim Chambers]]' ''[[Cyclopaedia]],'' in 1728.",
    "In [[Dares Phrygius]]' ''Account of the Destruction of Troy'', '''abacus''' (''plural'' '''abaci''')",
    ":) :-( <3 (^_^) ¯\\_(ツ)_/¯ a.m. p.m. 10a.m. e.g. i.e. and/or it 's he 's can't cannot",
    "tabs\tand  double  spaces\u00a0and\u2009thin\u3000spaces\r\nand CRLF\x0bvt\x0cff\x1cfs\u2028ls",
    "Ünïcödé wörds, naïve café; Привет, мир! 日本語のテキスト。 عربى؟ 12:30:45pm 1,000,000 -5 +3 4-5",
    "Emoji 👍🏽 and symbols © ® ™ ° ± § ¶ • … — – ‘single’ “double” «guillemets» „low“",
    "",
    "   ",
    "word",
]
SENTENCE_LINES = [
    "Hello there. This is it! Yes... no. Mr. Smith went. Really?! Done",
    "The wheel was rebuilt in 1978. It still turns.  ",  # trailing spaces after a cut citation
    " Leading space. Then more.",
    "Two  spaces.  Then\ttab. End",
    "''Italic.'' Bold: '''x'''. Quote: \"Yes.\" (Fine.) [1] [2]",
    "",
    "  ",
    "one two three",
]


@pytest.fixture(scope="module")
def tokenizer():
    return EnglishTokenizer()


@pytest.mark.parametrize("text", TRICKY)
def test_words_equal_datatrove(tokenizer, text):
    assert tokenizer.words(text) == split_into_words(text, "en")
    assert SplitText(text, tokenizer).words == split_into_words(text, "en")


@pytest.mark.parametrize("line", SENTENCE_LINES + TRICKY[:3])
def test_line_words_and_sentences_equal_datatrove(tokenizer, line):
    expected = (len(split_into_words(line, "en")), len(split_into_sentences(line, "en")))
    assert tokenizer.line_counts(line) == expected
    assert tokenizer.line_counts(line, check_context=bool(line.split())) == expected


def test_datatrove_splits_english_with_spacy_not_nltk():
    assert type(load_word_tokenizer("en")).__name__ == "SpaCyTokenizer"


def test_no_english_infix_consumes_a_letter_or_digit():
    # `EnglishTokenizer._plain` skips the infix search for letters-and-digits strings on this ground.
    nlp = spacy.blank("en")
    consumed = []
    for piece in nlp.Defaults.infixes:
        consumed.append(re.compile(re.sub(r"\(\?<=\[.*?\]\)|\(\?=\[.*?\]\)", "", piece)))
    assert all("(?<" not in p.pattern and "(?=" not in p.pattern for p in consumed)
    for code in range(0x110000):
        ch = chr(code)
        if ch.isalnum():
            assert not any(p.match(ch) for p in consumed), ch


def test_memo_starts_over_when_full_and_gives_the_same_words():
    small = EnglishTokenizer(max_chunks=5)
    text = TRICKY[0]
    first = small.words(text)
    small.start_document()  # over the limit: forgets everything
    assert len(small.chunk_index) == 0
    assert small.words(text) == first == split_into_words(text, "en")


@pytest.mark.shared_data
def test_every_chunk_and_document_of_the_parity_set(shared_data, tokenizer):
    docs = [text for _, text in english_corpus(shared_data, **TEST_CAPS)]
    chunks = list(dict.fromkeys(c for text in docs for c in text.split()))
    spacy_tokenizer = spacy.blank("en").tokenizer
    replayed = 0
    for chunk in chunks:
        ours = tokenizer._affix_tokens(chunk)
        if ours is not None:
            replayed += 1
            assert ours == [t.text for t in spacy_tokenizer(chunk)], chunk
    assert replayed > 0.9 * len(chunks)
    datatrove_words = load_word_tokenizer("en").word_tokenize
    for text in docs[::4]:
        assert SplitText(text, tokenizer).words == datatrove_words(text)
