"""Scoring with bounded memory (issue 21) gives exactly what the unbounded code gave.

Every function rewritten so that a document near max_page_bytes no longer builds a Python list of all its
chunks, words or n-grams is compared with the code as it was (tests/support/scoring_reference.py) on random texts
that stress it, with its piece and block sizes made tiny so that every text crosses many boundaries."""

from __future__ import annotations

import random
import re
import sys

import numpy as np
import pytest

from support import scoring_reference as ref
from gristmill.filters import c4, english, gopher, toxicity
from gristmill.filters.c4 import C4LineRules
from gristmill.filters.english import EnglishTokenizer, chunk_pieces
from gristmill.filters.fineweb import fineweb_scores
from gristmill.filters.gopher import gopher_quality_scores, ngram_repetition
from gristmill.filters.pieces import Utf8Text, text_pieces
from gristmill.filters.textsplit import SplitText

RULES = [C4LineRules(), C4LineRules(min_words_per_line=None, max_word_length=None),
         C4LineRules(min_words_per_line=0, max_word_length=4, remove_citations=False),
         C4LineRules(min_words_per_line=5, max_word_length=12, drop_javascript_lines=False, drop_policy_lines=False)]
CONTEXT_CASES = ["]]' ''Account was here", "see ]]' ''Account ]]' ''Account and more", "a.  b. ''  ''x :-) ''y",
                 # whitespace other than one space is a token of its own: it can start a sentence
                 "So it ended.  ''", "We go on now!\t--", "one two three.\xa0,\nnext line here"]


def texts(count: int, seed: int, max_words: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [*CONTEXT_CASES, "", " \n\t ", *(ref.random_text(rng, max_words) for _ in range(count))]


def test_the_cut_characters_are_exactly_str_split_separators():
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        is_space = char.isspace()
        assert bool(english._WHITESPACE.match(char)) == is_space, hex(code)
        if is_space:
            assert f"a{char}b".split() == ["a", "b"], hex(code)


@pytest.mark.parametrize("piece_chars", [1, 2, 5, 13, 64, None])
def test_chunk_pieces_are_str_split(piece_chars):
    for text in texts(150, seed=1):
        pieces = list(chunk_pieces(text, piece_chars))
        assert all(pieces)
        assert [chunk for piece in pieces for chunk in piece] == text.split()


@pytest.mark.parametrize("piece_chars", [1, 7, 40, None])
def test_document_words_split_in_pieces_equal_the_whole_split(monkeypatch, piece_chars):
    if piece_chars:
        monkeypatch.setattr(english, "PIECE_CHARS", piece_chars)
    tokenizer = EnglishTokenizer.shared()
    for text in texts(120, seed=2):
        tokenizer.start_document()
        words, chunk_ids, context = tokenizer.document_words(text)
        expected = ref.document_words(tokenizer, text)
        np.testing.assert_array_equal(words, expected[0])
        np.testing.assert_array_equal(chunk_ids, expected[1])
        assert context == expected[2], text


@pytest.mark.parametrize("piece_chars", [1, 7, 40, None])
def test_a_long_texts_chunk_ids_found_again_and_words_released(monkeypatch, piece_chars):
    """A long text's split does not keep its chunk ids beside its words; read, they are looked up again and
    equal those found with the words. release_words drops a long text's word ids (found again if read)."""
    if piece_chars:
        monkeypatch.setattr(english, "PIECE_CHARS", piece_chars)
    tokenizer = EnglishTokenizer.shared()
    for text in texts(80, seed=12):
        tokenizer.start_document()
        words, chunk_ids, context = tokenizer.document_words(text)
        split = SplitText(text, tokenizer)
        np.testing.assert_array_equal(split.word_ids, words)
        split.release_words()
        assert ("_word_facts" in vars(split)) == (len(text) <= english.PIECE_CHARS)
        np.testing.assert_array_equal(split.chunk_ids, chunk_ids)
        assert split.needs_context == context
        np.testing.assert_array_equal(split.word_ids, words)


@pytest.mark.parametrize("block", [1, 2, 3, 8, 1 << 16])
def test_chunk_words_in_blocks_equal_the_whole(block):
    tokenizer = EnglishTokenizer.shared()
    for text in texts(120, seed=8):
        split = SplitText(text, tokenizer)
        np.testing.assert_array_equal(tokenizer.chunk_words(split.chunk_ids, block=block),
                                      tokenizer._chunk_words(split.chunk_ids))
        if not split.needs_context:
            np.testing.assert_array_equal(tokenizer.chunk_words(split.chunk_ids, block=block), split.word_ids)


@pytest.mark.parametrize("block", [1, 2, 3, 8, 1 << 16])
def test_line_facts_in_blocks_equal_the_whole(block):
    tokenizer = EnglishTokenizer.shared()
    for text in texts(120, seed=3):
        split = SplitText(text, tokenizer)
        if split.needs_context:
            continue
        per_line = np.array([len(line.split()) for line in split.lines], dtype=np.int64)
        got = tokenizer.line_facts(split.chunk_ids, per_line, block=block)
        expected = ref.line_facts(tokenizer, split.chunk_ids, per_line)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("piece_chars", [3, 30, None])
def test_c4_lines_equal_the_reference(monkeypatch, piece_chars):
    if piece_chars:
        monkeypatch.setattr(english, "PIECE_CHARS", piece_chars)
    tokenizer = EnglishTokenizer.shared()
    for text in texts(100, seed=4):
        for rules in RULES:
            assert c4._c4_lines(SplitText(text, tokenizer), rules) == ref.c4_lines(SplitText(text, tokenizer), rules), text


def test_fineweb_scores_equal_the_reference():
    """FineWeb's scores from the kept lines without joining them equal those of the joined text."""
    tokenizer = EnglishTokenizer.shared()
    for text in texts(100, seed=9):
        for rules in RULES:
            lines = c4._c4_lines(SplitText(text, tokenizer), rules)
            for short in (0, 5, 30):
                assert fineweb_scores(lines, short) == ref.fineweb_scores(lines, short), text
    rng = random.Random(10)
    pieces = ["", " ", "\t", "\xa0 ", "a", " b ", "end.", "  x!  ", "\u2028", "\x1f", "same", "same", "  [1] "]
    for _ in range(3000):  # kept lines as c4 can leave them: blank, whitespace-only, unstripped after a cut
        kept = tuple(rng.choice(pieces) + rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        lines = c4.C4Lines(0, 0, 0, kept, rng.randint(0, 9))
        assert fineweb_scores(lines) == ref.fineweb_scores(lines), kept


def adversarial_sequences(rng: random.Random) -> list[np.ndarray]:
    """Word ids with every kind of repetition: one word, periods 1..12, runs of runs, all distinct, random."""
    out = [np.zeros(0, np.int64), np.array([3]), np.array([3, 3]), np.arange(50), np.zeros(40, np.int64)]
    for period in range(1, 13):
        out.append(np.tile(np.arange(period), rng.randint(1, 30)))
    for _ in range(150):
        alphabet = rng.randint(1, 8)
        seq: list[int] = []
        while len(seq) < rng.randint(1, 300):
            if seq and rng.random() < 0.3:
                seq += seq[-rng.randint(1, 12):] * rng.randint(1, 5)
            else:
                seq.append(rng.randrange(alphabet))
        out.append(np.array(seq, dtype=np.int64))
    return out


@pytest.mark.parametrize("block, partition", [(1, 1 << 17), (3, 1 << 17), (1 << 16, 1 << 17), (1, 1), (3, 2),
                                              (2, 5), (1 << 16, 7), (1 << 16, 64)])
def test_ngram_repetition_equals_the_reference(monkeypatch, block, partition):
    """`partition`: positions grouped at a time; texts with more words also look their lengths up."""
    monkeypatch.setattr(gopher, "_GREEDY_BLOCK", block)
    monkeypatch.setattr(gopher, "_BLOCK", block)
    monkeypatch.setattr(gopher, "_PARTITION_SIZE", partition)
    rng = random.Random(5)
    for ids in adversarial_sequences(rng):
        lengths = np.array([rng.randint(1, 12) for _ in range(len(ids))], dtype=np.int64)
        expected = ref.ngram_repetition(ids, lengths)
        assert ngram_repetition(ids, lengths) == expected, ids.tolist()
        table = np.zeros(int(ids.max()) + 1 if len(ids) else 1, np.int64)  # one length per id
        table[ids] = np.arange(len(ids)) % 11 + 1
        assert (ngram_repetition(ids.astype(np.int32), None, token_lengths=table)
                == ref.ngram_repetition(ids, table[ids])), ids.tolist()
    tokenizer = EnglishTokenizer.shared()
    for text in texts(60, seed=6):
        split = SplitText(text, tokenizer)
        expected = ref.ngram_repetition(split.word_ids, split.word_lengths)
        assert ngram_repetition(split.word_ids, split.word_lengths) == expected, text
        assert ngram_repetition(split.word_ids, None, token_lengths=tokenizer.length) == expected, text


def test_gopher_quality_word_facts_equal_the_reference():
    tokenizer = EnglishTokenizer.shared()
    for text in texts(100, seed=7):
        split = SplitText(text, tokenizer)
        scores = gopher_quality_scores(split)
        assert (scores.mean_word_length, scores.stop_word_count) == ref.quality_word_facts(split), text


def test_gopher_quality_scores_with_word_facts_summed_in_small_blocks_are_the_same(monkeypatch):
    """Every Gopher quality score (word count, alpha words ratio, mean word length, ...) with the per-word
    facts and the stop words summed a few words at a time equals the one-block result."""
    tokenizer = EnglishTokenizer.shared()
    cases = texts(60, seed=22)
    expected = [gopher_quality_scores(SplitText(text, tokenizer)) for text in cases]
    sums, present = gopher._word_fact_sums, gopher._distinct_present
    monkeypatch.setattr(gopher, "_word_fact_sums", lambda ids, tok, block=3: sums(ids, tok, block))
    monkeypatch.setattr(gopher, "_distinct_present", lambda wanted, ids, block=3: present(wanted, ids, block))
    for text, scores in zip(cases, expected):
        assert gopher_quality_scores(SplitText(text, tokenizer)) == scores, text


@pytest.mark.parametrize("piece_chars", [1, 4, 30, 1 << 16])
def test_identity_blinding_in_pieces_equals_the_reference(monkeypatch, piece_chars):
    from gristmill.filters.toxicity import ToxicityModel, normalize

    monkeypatch.setattr(toxicity, "WORD_PIECE_CHARS", piece_chars)
    blinder = ToxicityModel().blinder
    terms = sorted(" ".join(phrase) for phrases in blinder._by_first.values() for phrase in phrases)
    rng = random.Random(9)
    cases = ref.blinding_texts(rng, terms, 300) + [normalize(text) for text in texts(50, seed=10)]
    changed = 0
    for text in cases:
        expected = ref.blind(blinder, text)
        assert blinder(text) == expected, text
        assert " ".join(blinder.blind_parts(random_parts(rng, text, piece_chars))) == expected, text
        changed += expected != text
    assert changed > 100  # terms were found and removed, not only passed through
    # Terms inside terms, ending inside them or past them: the scan must skip what a term covered.
    synthetic = toxicity.TermBlinder(["a b c", "b", "c d", "d", "e a", "a", "f f f f f"])
    for _ in range(3000):
        text = " ".join(rng.choice("abcdef") if rng.random() < 0.9 else "" for _ in range(rng.randint(0, 25)))
        expected = ref.blind(synthetic, text)
        assert synthetic(text) == expected, text
        assert " ".join(synthetic.blind_parts(random_parts(rng, text, piece_chars))) == expected, text


def random_parts(rng: random.Random, text: str, piece_chars: int) -> list[str]:
    """`text` cut at spaces into parts of about `piece_chars` (of one to a few words when it is tiny), the spaces
    at the cuts dropped: `" ".join` of the parts is `text`."""
    words = text.split(" ")
    parts, start = [], 0
    while start < len(words):
        end = start + 1
        while end < len(words) and rng.random() < 1 - 1 / max(2, piece_chars // 4):
            end += 1
        parts.append(" ".join(words[start:end]))
        start = end
    return parts


MINHASH_CASES = ["", None, "...", "one", "two words", "a b c d", "Café e\u0301t\u00e9 \u0301x naïve", "3.14 2,5 1 000 .5 ,5",
                 "İstanbul ΣΑΣ ΌΣΟΣ straße", "emoji 🙂 here\nand\tthere\u3000wide\xa0space", "\n\n \n", "x\ny\nz w v u"]


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("piece_chars", [3, 80])
def test_long_texts_signed_in_pieces_equal_the_whole(monkeypatch, n, piece_chars):
    from gristmill.filters import minhash

    rng = random.Random(11 + n)
    batch = MINHASH_CASES + [ref.random_text(rng, 80) for _ in range(30)]
    expected_sigs, expected_present, word_lists = minhash.signatures(batch, n, 32, 7)
    expected_exact = minhash.exact_hashes(word_lists)
    monkeypatch.setattr(minhash, "PIECE_CHARS", piece_chars)
    sigs, present, exact = minhash.document_signatures(batch, n, 32, 7)
    assert sum(len(t or "") > piece_chars for t in batch) > 20  # most go the long way
    np.testing.assert_array_equal(present, expected_present)
    np.testing.assert_array_equal(sigs, expected_sigs)
    assert exact == expected_exact


def test_signatures_of_chosen_rows_read_from_the_column_equal_the_taken_rows(monkeypatch):
    """The dedup stage passes the whole text column and the rows that are documents: a long text is signed
    from a slice of the column's own buffer (chunked, offset, large and plain strings)."""
    import pyarrow as pa

    from gristmill.filters import minhash

    rng = random.Random(15)
    values = MINHASH_CASES + [ref.random_text(rng, 80) for _ in range(30)]
    rows = np.array([i for i in range(len(values)) if i % 3 != 1][::-1])
    expected = minhash.document_signatures([values[i] for i in rows], 5, 32, 7)
    monkeypatch.setattr(minhash, "PIECE_CHARS", 40)
    for column in (pa.chunked_array([pa.array(values[:17], pa.large_string()), pa.array(values[17:], pa.large_string())]),
                   pa.array(["skip", *values], pa.string()).slice(1),
                   pa.array(values, pa.large_string())):
        sigs, present, exact = minhash.document_signatures(column, 5, 32, 7, rows=rows)
        np.testing.assert_array_equal(sigs, expected[0])
        np.testing.assert_array_equal(present, expected[1])
        assert exact == expected[2]


SIGMA_CASES = ["ΣΑΣ ΌΣΟΣ", "ΟΔΟΣ\nΟΔΟΣ x", "AΣ Σ ΣA AΣ\u0301 A\u0301Σ A\u00adΣ\u00ad b", "İstanbul İ straße ǅ ﬃ ΐ",
               "Σ", " Σ ", "AΣ\nA", "ʼΣʼ A'Σ A.Σ"]


@pytest.mark.parametrize("piece_chars", [1, 2, 5, 40])
def test_lowercasing_in_pieces_equals_str_lower(piece_chars):
    """`pieces.lower` cuts at spaces and newlines: a capital sigma's final form (the one context str.lower
    reads) must come out as in the whole text, next to cased letters, case-ignorable marks and cuts."""
    from gristmill.filters.pieces import lower

    rng = random.Random(18)
    alphabet = "ΣσςAaİß \n\u0301\u00ad'.ʼx"
    cases = [*SIGMA_CASES, *texts(40, seed=19), *("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
                                                   for _ in range(3000))]
    for text in cases:
        assert lower(text, piece_chars) == text.lower(), text


def test_identity_lowercasing_keeps_offsets_in_blocks(monkeypatch):
    from gristmill.filters import identity, pieces

    monkeypatch.setattr(identity, "LOWER_PIECE_CHARS", 3)
    monkeypatch.setattr(pieces, "LOWER_PIECE_CHARS", 3)
    for text in [*SIGMA_CASES, *texts(20, seed=20)]:
        expected = text.lower() if len(text.lower()) == len(text) else "".join(
            c.lower() if len(c.lower()) == 1 else c for c in text)
        assert identity._lower(text) == expected, text


@pytest.mark.parametrize("block", [1, 3, 64])
def test_redaction_written_as_utf8_in_blocks_equals_the_redacted_string(block):
    from gristmill.filters.pii import PiiSpan, redact, redact_utf8

    rng = random.Random(16)
    for text in texts(60, seed=17):
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, 2 * rng.randint(0, 4))))
        spans = [PiiSpan(cuts[k], cuts[k + 1], rng.choice(["EMAIL_ADDRESS", "PHONE_NUMBER"]), 1.0)
                 for k in range(0, len(cuts) - 1, 2)]
        assert redact_utf8(text, spans, block) == redact(text, spans).encode("utf-8"), (text, spans)


@pytest.mark.parametrize("piece_chars", [1, 5, 40, None])
def test_toxicity_normalize_in_pieces_equals_the_reference(monkeypatch, piece_chars):
    if piece_chars:
        monkeypatch.setattr(toxicity, "PIECE_CHARS", piece_chars)
    rng = random.Random(12)
    cases = [*ref.TWEETY, *(ref.tweety_text(rng) for _ in range(300)), *texts(60, seed=13)]
    for text in cases:
        expected = ref.normalize(text)
        assert toxicity.normalize(text) == expected, text
        assert toxicity.normalize(Utf8Text.of(text)) == expected, text  # decoded a piece of bytes at a time


def test_long_texts_signed_in_pieces_on_the_torch_path(monkeypatch):
    """The GPU path of the piecewise signing, with torch on the CPU here (on CUDA when a GPU is present)."""
    torch = pytest.importorskip("torch", reason="torch is optional (the train extra: pip install 'gristmill[train]')")
    from gristmill.filters import minhash

    rng = random.Random(14)
    batch = MINHASH_CASES + [ref.random_text(rng, 80) for _ in range(20)]
    expected = minhash.document_signatures(batch, 5, 32, 7)
    monkeypatch.setattr(minhash, "PIECE_CHARS", 40)
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        sigs, present, exact = minhash.document_signatures(batch, 5, 32, 7, device=device)
        np.testing.assert_array_equal(sigs, expected[0])
        np.testing.assert_array_equal(present, expected[1])
        assert exact == expected[2]


def test_the_quality_stage_scores_long_texts_as_short_ones(monkeypatch):
    """ScoreQuality with every text on the long path (learned and split in pieces, no list of its chunks)
    writes the same table as with every text on the short path."""
    import pyarrow as pa

    from gristmill.pipeline.stages import quality
    from gristmill.schemas import columns as C

    batch = texts(60, seed=15)
    rows = [{name: None for name in C.SOURCE_COLUMNS} | {C.ID: str(i), C.TEXT: t, C.LANGUAGE: "en", C.LANGUAGE_SCORE: 1.0}
            for i, t in enumerate(batch)]
    table = pa.Table.from_pylist(rows, schema=C.schema_of(dict.fromkeys([*C.SOURCE_COLUMNS, C.TEXT, C.LANGUAGE,
                                                                         C.LANGUAGE_SCORE])))
    expected = quality.ScoreQuality()(table)
    monkeypatch.setattr(quality, "PIECE_CHARS", 0)
    monkeypatch.setattr(english, "PIECE_CHARS", 7)
    assert quality.ScoreQuality()(table).equals(expected)


def _memo_state(tokenizer: EnglishTokenizer) -> dict:
    state = {}
    for name in tokenizer._APPENDED:
        kept = getattr(tokenizer, name)
        state[name] = list(kept.items()) if isinstance(kept, dict) else list(kept) if isinstance(kept, list) else kept.view.tolist()
    return state


def test_a_long_text_leaves_the_memo_as_it_found_it():
    """A document scored inside `forgetting()` (ScoreQuality's long texts) learns its chunks and tokens and
    drops them after: the memo is what it was before, and what it knew keeps its ids."""
    tokenizer = EnglishTokenizer()
    short = texts(20, seed=21)
    ids = [tokenizer.word_ids(text).tolist() for text in short]  # learned before
    before = _memo_state(tokenizer)
    long = "\n".join(f"{text} ({k}.{k * 7})" for k, text in enumerate(texts(60, seed=22)))
    with tokenizer.forgetting():
        words = SplitText(long, tokenizer).words
        assert len(tokenizer.chunk_index) > len(before["chunk_index"])
    assert _memo_state(tokenizer) == before
    assert [tokenizer.word_ids(text).tolist() for text in short] == ids
    assert SplitText(long, EnglishTokenizer()).words == words  # what it found inside is what a fresh memo finds


def test_the_quality_stage_forgets_a_long_texts_chunks(monkeypatch):
    """After a batch whose long text (over PIECE_CHARS) brought thousands of chunks never seen before, the
    shared memo holds what the batch's short texts brought, as if the long text had not been there."""
    import pyarrow as pa

    from gristmill.pipeline.stages import quality
    from gristmill.schemas import columns as C

    def table(batch):
        rows = [{name: None for name in C.SOURCE_COLUMNS} | {C.ID: str(i), C.TEXT: t, C.LANGUAGE: "en",
                                                             C.LANGUAGE_SCORE: 1.0} for i, t in enumerate(batch)]
        return pa.Table.from_pylist(rows, schema=C.schema_of(dict.fromkeys([*C.SOURCE_COLUMNS, C.TEXT, C.LANGUAGE,
                                                                             C.LANGUAGE_SCORE])))

    short = texts(30, seed=23, max_words=40)
    long = " ".join(f"paragraph ({k}.{k % 97})" for k in range(5000))
    monkeypatch.setattr(quality, "PIECE_CHARS", 1000)
    monkeypatch.setattr(EnglishTokenizer, "_shared", EnglishTokenizer())
    stage = quality.ScoreQuality()
    stage(table(short))
    known = _memo_state(EnglishTokenizer.shared())
    scored = stage(table([long, *short]))
    assert _memo_state(EnglishTokenizer.shared()) == known
    monkeypatch.setattr(EnglishTokenizer, "_shared", EnglishTokenizer())
    assert quality.ScoreQuality()(table([long, *short])).equals(scored)


def combiner_texts(rng: random.Random, combiner: toxicity.EvaluativeCombiner, count: int) -> list[str]:
    """Space-separated words dense in what the combiner reads: negators, "kind of", valence and offensive words,
    profanity entries (multi-word ones whole, cut short and run together) and empty words (double spaces)."""
    valence = sorted(combiner.lexicon.valences)
    lists = [sorted(combiner.lexicon.negators), ["kind", "of", "kind of", "not kind of"], valence, sorted(combiner.offense),
             [w for w in valence if abs(combiner.lexicon.valences[w]) > 2.5] or valence, ["x", "y", "the", ""]]
    phrases = sorted(" ".join(p) for ps in combiner.profanity._by_first.values() for p in ps)
    out = ["", " ", "kind", "kind of", "not", "not good", " ".join(phrases[:1])]
    for _ in range(count):
        words: list[str] = []
        for _ in range(rng.randint(0, 40)):
            roll = rng.random()
            if roll < 0.02 and phrases:  # rare: most texts must take the branch without profanity
                phrase = rng.choice(phrases).split()
                words += phrase if rng.random() < 0.3 else phrase[:rng.randint(1, len(phrase) - 1)]
            elif roll < 0.025 and combiner.profanity.words:
                words.append(rng.choice(sorted(combiner.profanity.words)))
            else:
                words.append(rng.choice(rng.choice(lists)))
        out.append(" ".join(words))
    return out


def _synthetic_combiner() -> toxicity.EvaluativeCombiner:
    """A tiny vocabulary, so every rule meets every cut: negators three words back, "kind of", profanity
    phrases of up to five words that share their first words, ties and zeros among offensiveness."""
    lexicon = toxicity.ValenceLexicon({"good": 2.0, "bad": -2.5, "kind": 1.5, "of": 0.5, "d": -1.0, "not": -0.5},
                                      ["not", "no"], -0.74)
    profanity = toxicity.WordSet(["a b c d e", "a b x", "b c", "zz", "p q p q p r"])
    offense = {"c": 0.5, "d": 0.5, "e": 0.0, "x": -0.0, "good": 0.25, "bad": 1.0, "kind": 0.5}
    return toxicity.EvaluativeCombiner(1.0, 1.0, 1.0, 1.0, 0.0, "__label__toxic", lexicon, profanity, offense)


@pytest.mark.parametrize("piece_chars", [1, 3, 10, 40, 1 << 16])
def test_combiner_features_in_pieces_equal_the_reference(monkeypatch, piece_chars):
    monkeypatch.setattr(toxicity, "WORD_PIECE_CHARS", piece_chars)
    rng = random.Random(15)
    shipped = toxicity.ToxicityModel().combiner
    synthetic = _synthetic_combiner()
    cases = [(shipped, t) for t in combiner_texts(rng, shipped, 400)]
    cases += [(shipped, toxicity.normalize(t)) for t in texts(40, seed=16)]
    alphabet = ["a", "b", "c", "d", "e", "x", "zz", "good", "bad", "kind", "of", "not", "no", "", "kind of",
                "p q p q p", "p q p q p r", "q p q p r", "e x", "x e"]
    cases += [(synthetic, " ".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))) for _ in range(3000)]
    branches = set()
    for combiner, text in cases:
        probability = rng.choice([0.0, 1.0, 0.5, rng.random()])
        expected = ref.combiner_features(combiner, text, probability)
        assert repr(combiner.features(text, probability)) == repr(expected), text  # repr: -0.0 is not 0.0 here
        branches.add((combiner is synthetic, expected[1]))
    assert branches == {(False, 0.0), (False, 1.0), (True, 0.0), (True, 1.0)}
    if piece_chars < 40:
        assert sum(len(text) > piece_chars for _, text in cases) > len(cases) // 2  # most go the long way


@pytest.mark.parametrize("piece_chars", [1, 3, 17])
def test_utf8_pieces_are_the_texts_pieces(piece_chars):
    """A long text read from its UTF-8 bytes comes in whole characters, cut at the same kind of place."""
    rng = random.Random(17)
    cut = toxicity._CUT
    for text in [*ref.TWEETY, *(ref.tweety_text(rng) for _ in range(200)), *texts(40, seed=18)]:
        pieces = list(text_pieces(Utf8Text.of(text), piece_chars, cut))
        assert "".join(pieces) == text
        assert all(piece[:1] in " \n" for piece in pieces[1:]), pieces  # each cut is at a space or newline
        for piece in pieces[:-1]:  # the first space or newline from piece_chars bytes on ends each
            encoded = piece.encode()
            assert len(encoded) >= piece_chars and re.search(rb"[ \n]", encoded[piece_chars:]) is None, pieces
    with pytest.raises(ValueError, match="ASCII"):
        list(text_pieces(Utf8Text.of("a\u2028b"), 1, re.compile("\u2028")))


@pytest.mark.parametrize("piece_chars", [1, 4, 60])
def test_identity_attack_from_utf8_pieces_reads_the_same_sentences(monkeypatch, piece_chars):
    from gristmill.filters import identity

    lexicon = identity.IdentityLexicon.default()
    rng = random.Random(19)
    people = ["Women", "black people", "Muslims", "gay men", "the elderly", "immigrants"]
    cases = [*texts(40, seed=20), *(ref.tweety_text(rng) for _ in range(60))]
    cases += [" ".join(rng.choice(people + ref.WORDS + [".", "!", "\n", "\n\n", "? ", "\u2026"])
                       for _ in range(rng.randint(0, 80))) for _ in range(200)]
    seen: list[list[str]] = []

    def record(sentences: list[str]) -> list[float]:
        seen.append(list(sentences))
        return [len(s) / 1000 for s in sentences]

    monkeypatch.setattr(identity, "PIECE_CHARS", piece_chars)
    with_identity = 0
    for text in cases:
        seen.clear()
        whole = lexicon.identity_attack(text, record)
        expected = list(seen)
        seen.clear()
        assert lexicon.identity_attack(Utf8Text.of(text), record) == whole, text
        assert seen == expected, text
        with_identity += bool(expected)
    assert with_identity > 100


@pytest.mark.parametrize("piece_chars", [1, 5, 40])
def test_word_list_count_in_pieces_equals_the_whole(monkeypatch, piece_chars):
    from gristmill.filters.c4 import BadWords

    entries = ["ass", "bad word", "σας", "İx", "a b c", "x", "don't", "'", "ΣΑΣ", "#tag"]
    scorer, whole = toxicity.WordListScorer(entries), BadWords(entries)
    rng = random.Random(21)
    vocabulary = ref.WORDS + entries + ["ΣΑΣ.", "bad", "word", "a", "b", "c", "İX", "ASS!", "σΑς"]
    cases = [*ref.TWEETY, *texts(40, seed=22)]
    cases += ["".join(rng.choice(vocabulary) + rng.choice(ref.SPACES + ref.BREAKS + ["", "."])
                      for _ in range(rng.randint(0, 60))) for _ in range(300)]
    monkeypatch.setattr(toxicity, "PIECE_CHARS", piece_chars)
    counted = 0
    for text in cases:
        expected = whole.count(text)
        assert scorer.count(text) == expected, text
        assert scorer.count(Utf8Text.of(text)) == expected, text
        counted += expected
    assert counted > 300
    newline_entry = toxicity.WordListScorer(["a\nb"])  # an entry with a newline: counted whole
    assert newline_entry.count("x a\nb " * 50) == 50


def test_the_toxicity_stage_scores_a_long_text_from_its_bytes(monkeypatch):
    """With PIECE_CHARS tiny every text goes the long way (UTF-8 bytes, never one str): the same columns."""
    import pyarrow as pa
    from collections import Counter

    from gristmill.pipeline.stages.toxicity import ScoreToxicity
    from gristmill.schemas import columns as C
    from gristmill.schemas.job import ToxicityConfig

    rng = random.Random(23)
    batch = [*ref.TWEETY[:10], None, "", *texts(20, seed=24), *(ref.tweety_text(rng) for _ in range(20)),
             "Women are wonderful cooks. They hate immigrants!\nShut the fuck up, you stupid bitch. black people"]
    n = len(batch)
    table = pa.table({C.TEXT: pa.array(batch, pa.string()), C.SKIP_REASON: pa.nulls(n, pa.string()),
                      C.QUARANTINE_REASON: pa.nulls(n, pa.string())})
    table = pa.concat_tables([table.slice(0, 30), table.slice(30)])  # two chunks
    stage = ScoreToxicity(ToxicityConfig())
    stage.setup()
    expected = stage.process(table, Counter())
    monkeypatch.setattr(toxicity, "PIECE_CHARS", 3)
    monkeypatch.setattr(toxicity, "WORD_PIECE_CHARS", 5)
    got = stage.process(table, Counter())
    for name in (C.TOXICITY_SCORE, C.IDENTITY_ATTACK_SCORE, C.TOXIC_SPAN_COUNT):
        assert repr(got[name].to_pylist()) == repr(expected[name].to_pylist()), name
    assert got.equals(expected)


@pytest.mark.parametrize("piece_chars, word_piece_chars", [(1, 1), (3, 5), (40, 20)])
def test_a_long_text_scores_as_a_short_one(monkeypatch, piece_chars, word_piece_chars):
    """ToxicityModel.score of a text over PIECE_CHARS (normalized, blinded and read in parts; fastText given the
    parts' bytes) equals its score the short way, as a str and as UTF-8 bytes."""
    model = toxicity.ToxicityModel()
    terms = sorted(" ".join(phrase) for phrases in model.blinder._by_first.values() for phrase in phrases)
    rng = random.Random(25)
    cases = [*texts(30, seed=26), *(ref.tweety_text(rng) for _ in range(60)), *ref.blinding_texts(rng, terms, 60),
             *combiner_texts(rng, model.combiner, 60), "Women are wonderful cooks.", "kind of gay people", "&amp;"]
    expected = [model.score(text) for text in cases]
    monkeypatch.setattr(toxicity, "PIECE_CHARS", piece_chars)
    monkeypatch.setattr(toxicity, "WORD_PIECE_CHARS", word_piece_chars)
    for text, score in zip(cases, expected):
        assert repr(model.score(text)) == repr(score), text
        assert repr(model.score(Utf8Text.of(text))) == repr(score), text
    assert len(set(expected)) > 100


def test_the_pii_stage_writes_long_texts_as_short_ones(monkeypatch):
    """RedactPII with every text on the long path (redacted as UTF-8 bytes a block at a time, handed to
    Arrow as bytes) writes the same table as with every text on the short path."""
    import pyarrow as pa

    from gristmill.pipeline.stages import pii
    from gristmill.schemas import columns as C
    from gristmill.schemas.job import PiiConfig

    values = ["Mail jane.doe@example.com or call +1 (212) 736-4100 \u00e9t\u00e9 🙂.", None, "no pii here",
              "card 4111 1111 1111 1111 and ΣΑΣ ip 192.168.10.20", *texts(20, seed=21)]
    table = pa.table({C.TEXT: pa.array(values, C.TYPES[C.TEXT]),
                      C.SKIP_REASON: pa.array([None] * len(values), C.TYPES[C.SKIP_REASON]),
                      C.QUARANTINE_REASON: pa.array([None] * len(values), C.TYPES[C.QUARANTINE_REASON])})

    def run():
        stage = pii.RedactPII(PiiConfig(ner_model=None))
        return stage(table)

    expected = run()
    monkeypatch.setattr(pii, "LONG_TEXT_CHARS", 0)
    got = run()
    assert expected[C.PII_COUNT].to_pylist()[:4] == [2, None, 0, 2]  # the cases hold PII, redacted below
    assert got.equals(expected)
