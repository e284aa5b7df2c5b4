"""Credentials recognised by their shape, anywhere in a payload, replaced by ``[REDACTED:kind]``.

The writer thread runs :func:`redact_json` over every event's encoded JSON (one
compiled-regex pass over bytes, in C) before any processor or sink sees it; on
a hit, the redacted bytes are parsed back so the stored payload, the derived
columns and the search index all carry the marker. Walking the payload's dicts
in Python would cost several times more for a typical LLM request, and would
miss a key that a stream split across two chunks (see :mod:`agentlog._batch`).

Every pattern stays inside one JSON string: character classes exclude ``"``
and ``\\``, so a replacement can never break the document. A JSON-escaped
newline (``\\n``) inside a PEM block is matched as an escape pair.

What is matched (and deliberately not): see ``docs/guarantees.md``. Token
counts (``max_tokens``) are numbers, never matched; hex digests, UUIDs and
prose are left alone because each shape needs its own prefix (``sk-``,
``AKIA``, ``eyJ``...) and, for the generic ``sk-`` form, a digit and an
upper-case letter in a body of 20+ characters.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["HOLD_MAX", "KINDS", "find_secrets", "marker", "redact_json", "redact_text", "stream_hold_from"]

# (kind, optional prefix kept as is, the secret). Order matters: the first
# alternative that matches at a position wins (sk-ant- before sk-).
_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("private_key", "",
     r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY-----(?:[^\"\\]|\\.){0,16384}?"
     r"(?:-----END[ A-Z0-9]{0,30}PRIVATE KEY-----|(?=\"|\Z))"),
    ("jwt", "", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    ("anthropic_key", "", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai_key", "", r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"),
    ("openai_key", "", r"sk-(?=[A-Za-z0-9_-]{0,300}?[0-9])(?=[A-Za-z0-9_-]{0,300}?[A-Z])[A-Za-z0-9_-]{20,}"),
    ("stripe_key", "", r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google_api_key", "", r"AIza[0-9A-Za-z_-]{35}"),
    ("github_token", "", r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("slack_token", "", r"xox[bpaosr]-[A-Za-z0-9-]{10,}"),
    ("huggingface_token", "", r"hf_[A-Za-z0-9]{30,}"),
    # An access key id followed closely by a 40-character secret: both go.
    ("aws_secret_access_key", r"A[KS]IA[A-Z0-9]{16}[^\"]{1,80}?(?<![A-Za-z0-9/+])",
     r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    ("aws_access_key_id", "", r"A[KS]IA[A-Z0-9]{16}(?![A-Z0-9])"),
    ("aws_secret_access_key", r"(?i:ecret_?access_?key)[\s\"'\\:=]{1,8}",
     r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
    ("basic_auth", r"(?i:basic)\s+", r"[A-Za-z0-9+/]{8,}={0,2}"),
    ("bearer_token", r"(?i:bearer)\s+", r"[A-Za-z0-9._~+/=-]{16,}"),
    ("url_password", r"://[^\s:/@\"\\]{1,256}:", r"[^\s@/\"\\]{1,256}(?=@)"),
)
# Where a branch can start: plain literals, which the regex engine scans for at ~6 µs per
# 50 KB (the full alternation, scanned, costs ~8 ms). Each candidate is then tried with
# the full expression anchored there. Keep in step with the first characters above.
_CANDIDATE = ("-----BEGIN|eyJ|sk-|sk_|rk_|AIza|AKIA|ASIA|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|xox|hf_"
              "|Basic|basic|BASIC|Bearer|bearer|BEARER|://|ecret|ECRET")
# The first look, over every payload: a part of each candidate above that begins with a
# rarer character ("k-" of "sk-", "yJ" of "eyJ", "//" of "://"...), each alternative led by
# a literal so the regex engine skips ahead to those characters and tries few branches
# there. It runs 2-3x faster than _CANDIDATE over JSON and prose, and since each of its
# alternatives is a substring of a candidate, every text _CANDIDATE matches, it matches
# too (tests/test_secrets.py checks each candidate): it only decides when to look closer.
_PRESCAN = (r"-----|yJ|k[-_]|A(?:Iza|KIA|SIA)|g(?:h[pousr]_|ithub_pat_)|xox|f_"
            r"|B(?:asic|ASIC|earer|EARER)|b(?:asic|earer)|//|cret|CRET")
_BOUNDED = frozenset({"jwt", "anthropic_key", "openai_key", "stripe_key", "google_api_key", "github_token",
                      "slack_token", "huggingface_token", "aws_access_key_id", "aws_secret_access_key",
                      "basic_auth", "bearer_token"})
_WORDISH = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")

#: The kinds a marker can name, e.g. ``[REDACTED:openai_key]``.
KINDS: tuple[str, ...] = tuple(dict.fromkeys(k for k, _, _ in _PATTERNS))


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


def _source() -> tuple[str, dict[str, tuple[str, str | None, bool]]]:
    """One alternation; each branch's secret is a named group, its prefix another."""
    branches = []
    groups: dict[str, tuple[str, str | None, bool]] = {}  # secret group -> (kind, prefix group, bounded)
    for i, (kind, prefix, secret) in enumerate(_PATTERNS):
        pre = f"p{i}" if prefix else None
        # A key must start a word; the keyword form (secret_access_key = ...) starts mid-word.
        groups[f"s{i}"] = (kind, pre, kind in _BOUNDED and not prefix.startswith("(?i:ecret"))
        branches.append((f"(?P<{pre}>{prefix})" if pre else "") + f"(?P<s{i}>{secret})")
    return "|".join(branches), groups


_SOURCE, _GROUPS = _source()
_TEXT = re.compile(_SOURCE)
_CAND_TEXT = re.compile(_CANDIDATE)
_CAND_BYTES = re.compile(_CANDIDATE.encode())
_PRESCAN_TEXT = re.compile(_PRESCAN)
_PRESCAN_BYTES = re.compile(_PRESCAN.encode())
_AWS_ID = re.compile(r"A[KS]IA[A-Z0-9]{16}")


def _plausible(kind: str, value: str) -> bool:
    """Second look for the shapes prose can take ("Basic information", "bearer of ...")."""
    if kind == "basic_auth":
        try:
            decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            return False
        return b":" in decoded
    if kind == "bearer_token":
        return any(c.isdigit() for c in value)
    return True


def _found(text: str) -> list[tuple[re.Match[str], str]]:
    """Each secret in ``text``, with its kind, left to right, not overlapping."""
    if _PRESCAN_TEXT.search(text) is None:
        return []
    out = []
    end = 0
    for c in _CAND_TEXT.finditer(text):
        if c.start() < end:
            continue
        m = _TEXT.match(text, c.start())
        if m is None:
            continue
        group = m.lastgroup
        assert group is not None
        kind, _, bounded = _GROUPS[group]
        start = m.start()
        if bounded and start and text[start - 1] in _WORDISH:
            continue
        if not _plausible(kind, m.group(group)):
            continue
        out.append((m, kind))
        end = m.end()
    return out


def _substitute(text: str, found: list[tuple[re.Match[str], str]]) -> str:
    parts = []
    at = 0
    for m, kind in found:
        group = m.lastgroup
        assert group is not None
        pre = _GROUPS[group][1]
        prefix = m.group(pre) if pre else ""
        if kind == "aws_secret_access_key" and pre:  # the pair form: the id goes too
            prefix = _AWS_ID.sub(marker("aws_access_key_id"), prefix)
        parts += [text[at:m.start()], prefix, marker(kind)]
        at = m.end()
    parts.append(text[at:])
    return "".join(parts)


def redact_json(data: bytes) -> bytes | None:
    """``data`` (encoded JSON) with every recognised secret replaced; None if there was none.

    The common case, no candidate, is one literal scan over the bytes.
    """
    if _PRESCAN_BYTES.search(data) is None or _CAND_BYTES.search(data) is None:
        return None
    text = data.decode("utf-8")  # orjson's output is valid UTF-8
    found = _found(text)
    return _substitute(text, found).encode("utf-8") if found else None


def redact_text(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[REDACTED:kind]``."""
    if _PRESCAN_TEXT.search(text) is None or _CAND_TEXT.search(text) is None:
        return text
    found = _found(text)
    return _substitute(text, found) if found else text


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of each secret in ``text`` (a kept prefix, such as ``Bearer ``, excluded)."""
    out = []
    for m, kind in _found(text):
        group = m.lastgroup
        assert group is not None
        start = m.start(group)
        if kind == "aws_secret_access_key" and _GROUPS[group][1]:
            start = m.start()  # the pair: from the key id on
        out.append((start, m.end(), kind))
    return out


# -- streams: where a secret may still be growing at the end of the text -------------------------
_STARTERS = ("sk-", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "AIza", "AKIA", "ASIA", "ghp_", "gho_",
             "ghu_", "ghs_", "ghr_", "github_pat_", "xoxb-", "xoxp-", "xoxa-", "xoxo-", "xoxs-", "xoxr-",
             "hf_", "eyJ")
_OPEN_PEM = re.compile(r"-----BEGIN(?![\s\S]*-----END[ A-Z0-9]{0,30}PRIVATE KEY-----)|-{1,5}(?:B[EGIN]{0,4})?\Z")
_TAIL_KEYWORD = re.compile(r"\b(?i:bearer|basic|secret_?access_?key)[\s\"':=]*\Z|\b(?:AKIA|ASIA)[A-Z0-9]{16}[^\"]{0,80}\Z")
_TAIL_WORD = re.compile(r"[A-Za-z0-9_.+/=:@-]+\Z")
_WORD_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9-]")
#: The longest tail a stream holds back while it might be the start of a secret.
HOLD_MAX = 16384


def _may_grow(word: str) -> int | None:
    """The offset in ``word`` (a trailing run of token characters) of a secret that may go on."""
    if "://" in word:
        return 0
    for m in _WORD_START.finditer(word):
        rest = word[m.start():]
        if any(s.startswith(rest) or rest.startswith(s) for s in _STARTERS):
            return m.start()
    return None


def stream_hold_from(text: str) -> int | None:
    """Where a secret may begin that the next chunk of a stream could continue; None if nowhere.

    The text's last word when it is (or begins) a key's prefix (``sk-``, ``A``,
    ``eyJhb``...), a ``Bearer``/``Basic`` keyword waiting for its value, an AWS key
    id waiting for its secret, a URL with a user, or a PEM block not yet ended.
    The writer holds such a stream's last chunks back until the next batch (see
    ``docs/guarantees.md``). Ordinary prose ends in ordinary words and is not held.
    """
    start = max(0, len(text) - HOLD_MAX)
    tail = text[start:]
    found = [m.start() for rx in (_OPEN_PEM, _TAIL_KEYWORD) if (m := rx.search(tail)) is not None]
    word = _TAIL_WORD.search(tail)
    if word is not None:
        at = _may_grow(word.group())
        if at is not None:
            found.append(word.start() + at)
    return start + min(found) if found else None
