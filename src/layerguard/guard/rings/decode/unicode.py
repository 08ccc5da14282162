"""Decoder for Unicode tricks: invisible characters, tag and variation-selector smuggling, homoglyphs."""

from __future__ import annotations

import re
import unicodedata

from layerguard.guard.rings.decode.base import (
    Decoding,
    bytes_to_text,
    dedupe,
    never_raise,
)

_INVISIBLE: frozenset[int] = frozenset(
    [*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF, 0x00AD, 0x180E, 0x034F, 0x3164, 0xFFA0]
    + [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]  # bidi embeddings, overrides, isolates
)
_BLACK_FLAG = "\U0001f3f4"  # subdivision flags (England, Scotland...) legitimately use tag characters
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "а": "a", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k", "о": "o", "р": "p",
    "с": "c", "у": "y", "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "Ѕ": "S", "І": "I", "Ј": "J", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ϲ": "c", "ϳ": "j",
    # (α, ν, ρ, κ... are left out: "Cα", "ρ-value" are science, not obfuscation)
    # Armenian and IPA look-alikes
    "օ": "o", "ս": "u", "ɡ": "g", "ɑ": "a",
}  # fmt: skip
_UNICODE_WORD_RE = re.compile(r"\w+")
# the visible text left once a hidden payload is cut out is named after the cut
_STRIPPED_NAMES = {"unicode-tags": "tags-stripped", "variation-selectors": "selectors-stripped"}


def _is_variation_selector(cp: int) -> bool:
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


def _extract_hidden(text: str) -> tuple[str, list[str], list[str]]:
    """Split off tag-character and variation-selector payloads.

    Returns:
        The text without them, the ASCII messages spelled in tag characters and the
        texts encoded one byte per variation selector (runs of >= 4 only; a lone
        U+FE0F after an emoji is presentation, not payload).
    """
    visible: list[str] = []
    tag_msgs: list[str] = []
    vs_msgs: list[str] = []
    tag_run: list[str] = []
    vs_run: list[int] = []
    run_after = ""

    def flush() -> None:
        if tag_run:
            msg = "".join(tag_run)
            is_flag = run_after == _BLACK_FLAG and len(msg) <= 7 and msg.isalnum()
            if not is_flag and msg.strip():
                tag_msgs.append(msg)
            tag_run.clear()
        if vs_run:
            if len(vs_run) >= 4:
                data = bytes(b - 0xFE00 if b <= 0xFE0F else b - 0xE0100 + 16 for b in vs_run)
                decoded = bytes_to_text(data)
                if decoded is not None:
                    vs_msgs.append(decoded)
            else:
                visible.extend(chr(b) for b in vs_run)
            vs_run.clear()

    for ch in text:
        cp = ord(ch)
        if 0xE0000 <= cp <= 0xE007F:
            if not tag_run:
                run_after = visible[-1] if visible else ""
            if 0xE0020 <= cp <= 0xE007E:
                tag_run.append(chr(cp - 0xE0000))
            continue
        if _is_variation_selector(cp):
            vs_run.append(cp)
            continue
        flush()
        visible.append(ch)
    flush()
    return "".join(visible), tag_msgs, vs_msgs


def _strip_invisible(text: str) -> tuple[str, int, int]:
    """Remove invisible characters; count those inside ASCII words and those next to ASCII text.

    Zero-width joiners inside emoji sequences or non-Latin scripts are removed from the
    output but not counted: they are how those scripts are written.
    """
    n = len(text)
    next_visible: list[str] = [""] * (n + 1)
    for i in range(n - 1, -1, -1):
        ch = text[i]
        next_visible[i] = next_visible[i + 1] if ord(ch) in _INVISIBLE else ch
    kept: list[str] = []
    in_word = near_ascii = 0
    for i, ch in enumerate(text):
        if ord(ch) not in _INVISIBLE:
            kept.append(ch)
            continue
        if i == 0 and ch == "\ufeff":  # byte-order mark
            continue
        prev = kept[-1] if kept else ""
        nxt = next_visible[i + 1]
        if prev.isascii() and nxt.isascii() and prev.isalnum() and nxt.isalnum():
            in_word += 1
        elif (prev and prev.isascii()) or (nxt and nxt.isascii()):
            near_ascii += 1
    return "".join(kept), in_word, near_ascii


def _nfkc(text: str) -> tuple[str, int]:
    """NFKC-normalise; count compatibility characters that became ASCII letters (fullwidth, math bold...)."""
    cache: dict[str, bool] = {}
    n_compat = 0
    for ch in text:
        if ch.isascii():
            continue
        hit = cache.get(ch)
        if hit is None:
            norm = unicodedata.normalize("NFKC", ch)
            hit = norm != ch and norm.isascii() and norm.isalpha()
            cache[ch] = hit
        n_compat += hit
    return unicodedata.normalize("NFKC", text), n_compat


def _strip_marks(text: str) -> tuple[str, int]:
    """Remove combining marks stacked on ASCII letters (zalgo); marks on other scripts are kept."""
    kept: list[str] = []
    base = ""
    n = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            if base.isascii() and base.isalpha():
                n += 1
                continue
            kept.append(ch)
            continue
        base = ch
        kept.append(ch)
    return "".join(kept), n


def _map_homoglyphs(text: str) -> tuple[str, int]:
    """Map Cyrillic/Greek look-alikes to Latin in words that mix them with Latin letters.

    A word made only of look-alikes is mapped too when the text is mostly Latin; genuine
    Russian or Greek words contain letters without a Latin twin and are left alone.
    """
    ascii_letters = sum(c.isascii() and c.isalpha() for c in text)
    other_letters = sum(c.isalpha() and not c.isascii() and c not in _HOMOGLYPHS for c in text)
    latin_text = ascii_letters > other_letters

    def kind(word: str) -> str:
        """``mixed`` (Latin + look-alikes), ``glyphs`` (look-alikes only) or ``other``."""
        n_ascii = n_glyph = 0
        for c in word:
            if c in _HOMOGLYPHS:
                n_glyph += 1
            elif c.isascii():
                n_ascii += c.isalpha()
            elif c.isalpha():
                return "other"  # a letter without a Latin twin: a genuine Cyrillic/Greek word
        if not n_glyph:
            return "other"
        return "mixed" if n_ascii else "glyphs"

    words = [m.group(0) for m in _UNICODE_WORD_RE.finditer(text)]
    kinds = {w: kind(w) for w in words}
    any_mixed = "mixed" in kinds.values()
    n_words = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal n_words
        word = m.group(0)
        k = kinds.get(word) or kind(word)
        # look-alike-only words: in Latin text, when long enough or next to mixed words ("а" in "pick а lock")
        if k == "mixed" or (k == "glyphs" and latin_text and (len(word) >= 2 or any_mixed)):
            n_words += 1
            return "".join(_HOMOGLYPHS.get(c, c) for c in word)
        return word

    return _UNICODE_WORD_RE.sub(replace, text), n_words


@never_raise
def decode_unicode(text: str) -> list[Decoding]:
    """Undo Unicode obfuscation: invisible characters, tag/variation-selector smuggling, homoglyphs.

    Steps: decode Unicode tag characters (U+E0000..U+E007F, ASCII spelled invisibly)
    and runs of variation selectors (one byte each) to text; strip zero-width and bidi
    control characters (U+200B..U+200F, U+2060..U+2064, U+FEFF, ...); NFKC (fullwidth,
    mathematical and circled letters); strip combining marks stacked on Latin letters;
    map Cyrillic/Greek look-alikes to Latin in mixed-script words.

    Args:
        text: Any text.

    Returns:
        The hidden messages (``unicode-tags``, ``variation-selectors``) and the
        normalised visible text named after the tricks found (``zero-width+homoglyph``).
    """
    if text.isascii():
        return []
    out: list[Decoding] = []
    tricks: dict[str, float] = {}
    visible, tag_msgs, vs_msgs = _extract_hidden(text)
    if tag_msgs:
        tricks["unicode-tags"] = 0.95
        out.append(Decoding("unicode-tags", " ".join(tag_msgs), 0.95))
    if vs_msgs:
        tricks["variation-selectors"] = 0.95
        out.append(Decoding("variation-selectors", " ".join(vs_msgs), 0.95))
    stripped, in_word, near_ascii = _strip_invisible(visible)
    if in_word or near_ascii:
        tricks["zero-width"] = min(0.95, 0.55 + 0.15 * in_word + 0.04 * near_ascii)
    normal, n_compat = _nfkc(stripped)
    if n_compat:
        tricks["nfkc"] = min(0.95, 0.6 + 0.03 * n_compat) if n_compat >= 3 else 0.4
    normal, n_marks = _strip_marks(normal)
    if n_marks:
        tricks["combining-marks"] = min(0.95, 0.55 + 0.05 * n_marks) if n_marks >= 2 else 0.45
    normal, n_glyph_words = _map_homoglyphs(normal)
    if n_glyph_words:
        tricks["homoglyph"] = 0.9 if n_glyph_words >= 2 else 0.75
    if tricks and normal.strip() and normal != text:
        names = [_STRIPPED_NAMES.get(t, t) for t in tricks]
        out.append(Decoding("+".join(names), normal, max(tricks.values())))
    return dedupe(out)
