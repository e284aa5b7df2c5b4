"""Requests stored by reference: the long parts of an ``llm.started`` payload kept once.

Every LLM call resends the conversation so far, so a run's requests, stored whole,
grow with the square of its length. :class:`Splitter` takes out of a payload its
long parts (the request's lists: messages, contents, input items, tool schemas; a
long value such as a system prompt; agentlog's canonical ``messages``) and gives
them back as *chains* of items: each item is one list element's JSON, named by a
hash of that JSON and of the previous item's hash. A request that adds two
messages to the previous one shares all of its items but two with it, and the
SQLite sink stores only the items not stored yet (``al_request_items``); the
payload keeps a ``null`` where each part was, and the event row a reference
(``al_events.refs``: ``[path, tail hash, count]`` per part). The ``events`` view
puts the parts back (migration 0003).

Everything works from the payload's JSON as the writer encoded it: after
redaction, processors and the size limit, so the items are exactly what a whole
payload would have held. A payload the size limit truncated is kept whole.

Hashing every item of every request would cost the writer time quadratic in the
run's length, as storing them did space. So the splitter remembers, per run and
part, the JSON of the last list it split and the hash of its last item: a list
whose JSON starts with that text followed by a comma continues it, item for item
(a JSON value cannot be cut short at a comma and still parse), and only its new
items are hashed. What it remembers is bounded (``_REMEMBERED_BYTES``, the least
recently split first out); a list it forgot is hashed whole.
"""

from __future__ import annotations

import hashlib
import re
from binascii import b2a_base64
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Chain", "Part", "Splitter", "chain_of"]

#: (hash, parent hash or None, item JSON): rows of al_request_items, in list order.
Chain = list[tuple[str, str | None, str]]

# A payload shorter than this is kept whole: splitting it would save little (a reference and
# an item row cost ~60 and ~90 B) and cost the writer a parse, hashes and look-ups.
_MIN_PAYLOAD_CHARS = 1024
_MIN_LIST_BYTES = 128  # a shorter list stays in the payload
_MIN_VALUE_BYTES = 512  # a value that is not a list (a system prompt): taken out from this size
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # keys that need no quoting in a JSON path
_ROOT = bytes(16)  # the "parent" of a first item, so every hashed input starts with 16 bytes
_COMMA, _CLOSE = ord(","), ord("]")
# Stand-ins for the parts while the rest of the payload is encoded: a string the payload may
# hold too costs nothing but the fast path (every byte is checked against the payload's JSON).
_MARKS = [(m, orjson.dumps(m)) for m in (f"\x00agentlog part {i}\x00" for i in range(16))]
_REMEMBERED_BYTES = 4 << 20  # JSON of the last lists split, kept to compare the next ones with


_dumps = orjson.dumps
_OPTS = orjson.OPT_NON_STR_KEYS


def _digest(parent: bytes, item: bytes) -> bytes:
    return hashlib.blake2b(parent + item, digest_size=16).digest()


def _name(digest: bytes) -> str:
    return b2a_base64(digest, newline=False)[:22].decode("ascii")  # 128 bits, no padding


def chain_of(values: list[Any], parent: bytes = _ROOT) -> tuple[Chain, bytes]:
    """The items of ``values`` chained after ``parent``; and the last one's digest."""
    out, tail, _ = _chain(values, parent)
    return out, tail


def _chain(values: list[Any], parent: bytes, parent_name: str | None = None) -> tuple[Chain, bytes, bytes]:
    """:func:`chain_of`, and the items' JSON joined by commas (the list's JSON, unbracketed)."""
    out: Chain = []
    texts = [_dumps(value, option=_OPTS) for value in values]
    if parent_name is None and parent is not _ROOT:
        parent_name = _name(parent)
    for item in texts:
        parent = _digest(parent, item)
        name = _name(parent)
        out.append((name, parent_name, item.decode("utf-8")))
        parent_name = name
    return out, parent, b",".join(texts)


@dataclass
class Part:
    """One part taken out of a payload.

    ``items`` are the part's items from the root (``base`` None), or only those that
    follow the item named ``base``, whose chain (the previous request's) is assumed
    stored: the writer checks it, and else stores :meth:`whole`.
    """

    tail: str
    items: Chain
    base: str | None
    text: bytes  # the list's JSON, exactly as in the payload

    def whole(self) -> Chain:
        return chain_of(orjson.loads(self.text))[0]


@dataclass
class _Last:
    """What is remembered of the last list split for a run and part."""

    head: bytes  # its JSON without the closing bracket
    count: int
    tail: bytes  # its last item's digest, and name
    tail_name: str


class _Mismatch(Exception):
    """The payload objects no longer encode to the payload's JSON."""


class Splitter:
    """Splits ``llm.started`` payloads (see the module docstring); one per writer."""

    def __init__(self) -> None:
        self._last: dict[tuple[str | None, str], _Last] = {}  # least recently split first
        self._last_bytes = 0

    def split(self, run_id: str | None, payload_json: bytes,
              payload: dict[str, Any] | None = None) -> tuple[str, str, list[Part]] | None:
        """``(payload with its long parts as null, refs JSON, the parts)``, or None to keep it whole.

        ``payload_json`` is the payload as encoded, and what is split: every text
        taken out is a slice of it, or checked equal to one. ``payload``, if given,
        is the same payload as objects, which spares parsing the JSON: they only say
        where the parts are (the host may have changed them since the payload was
        encoded: then the checks fail and the JSON is parsed). Parts are taken from
        ``request`` (its top-level values) and ``messages`` only, under keys that a
        JSON path names without quoting.
        """
        if len(payload_json) < _MIN_PAYLOAD_CHARS:
            return None
        if b'"$truncated"' in payload_json:  # cut by max_event_bytes: keep what is left as it is
            return None
        if isinstance(payload, dict):
            try:
                return self._split(run_id, payload_json, payload)
            except _Mismatch:
                pass
        parsed = orjson.loads(payload_json)
        if not isinstance(parsed, dict):
            return None
        try:
            return self._split(run_id, payload_json, parsed)
        except _Mismatch:  # pragma: no cover - parsed from the very JSON it is checked against
            return None

    def _split(self, run_id: str | None, text: bytes, p: dict[str, Any]) -> tuple[str, str, list[Part]] | None:
        # Candidates: (owner, key, path). The parts are replaced in copies, never in p.
        p = dict(p)
        found: list[tuple[dict[str, Any], str, str]] = []
        request = p.get("request")
        if isinstance(request, dict):
            request = p["request"] = dict(request)
            found += [(request, k, "$.request." + k) for k in request if type(k) is str and _KEY.match(k)]
        if "messages" in p:
            found.append((p, "messages", "$.messages"))
        # Each part's JSON, except for the longest list's: the rest of the payload gives its length.
        lists = [c for c in found if isinstance(c[0][c[1]], list) and c[0][c[1]]]
        longest = max(lists, key=lambda c: len(c[0][c[1]]), default=(None, None, None))[2]
        taken: list[tuple[dict[str, Any], str, str, bytes | None]] = []
        for owner, key, path in found:
            value = owner[key]
            if path == longest:
                taken.append((owner, key, path, None))
            elif isinstance(value, list) and value:
                dumped = _dumps(value, option=_OPTS)
                if len(dumped) >= _MIN_LIST_BYTES:
                    taken.append((owner, key, path, dumped))
            elif (type(value) is str and len(value) > _MIN_VALUE_BYTES) or isinstance(value, dict):
                # (a shorter string's JSON is shorter too, but for escapes: then it stays)
                dumped = _dumps(value, option=_OPTS)
                if len(dumped) >= _MIN_VALUE_BYTES:
                    taken.append((owner, key, path, dumped))
        if not taken:
            return None
        if len(taken) > len(_MARKS):
            raise _Mismatch  # more than 16 long top-level values: kept whole
        marks = [m[1] for m in _MARKS[:len(taken)]]
        values = []
        for (owner, key, _, _), (mark, _) in zip(taken, _MARKS, strict=False):
            values.append(owner[key])
            owner[key] = mark
        marked = _dumps(p, option=_OPTS)
        texts = self._cut(text, marked, marks, [t[3] for t in taken])
        refs: list[list[Any]] = []
        parts: list[Part] = []
        for (_, _, path, _), value, part_text in zip(taken, values, texts, strict=True):
            if isinstance(value, list):
                if len(part_text) < _MIN_LIST_BYTES:  # the longest list, and still short
                    continue
                part = self._list_part(run_id, path, value, part_text)
                count = len(value)
            else:
                tail = _name(_digest(_ROOT, part_text))
                part = Part(tail, [(tail, None, part_text.decode("utf-8"))], None, part_text)
                count = -1
            parts.append(part)
            refs.append([path, part.tail, count])
        if not parts:
            return None
        # The payload without its parts: the checked JSON, each mark replaced by null (or, for a
        # list left in after all, by its JSON).
        kept = {path for path, _, _ in refs}
        stripped = marked
        for (_, _, path, _), mark_json, part_text in zip(taken, marks, texts, strict=True):
            stripped = stripped.replace(mark_json, b"null" if path in kept else part_text, 1)
        return stripped.decode("utf-8"), orjson.dumps(refs).decode("utf-8"), parts

    @staticmethod
    def _cut(text: bytes, marked: bytes, marks: list[bytes], known: list[bytes | None]) -> list[bytes]:
        """The parts' JSON in ``text``: ``marked`` is the payload with ``marks`` in their place.

        Every byte of ``marked`` outside the marks must be in ``text`` at the place the
        parts' lengths give it (one part's length may be unknown: then it is what is left),
        and a part whose JSON is ``known`` must be that JSON; else :class:`_Mismatch`.
        """
        where = sorted((marked.find(m), i) for i, m in enumerate(marks))
        if where[0][0] < 0:
            raise _Mismatch
        rest = len(text) - (len(marked) - sum(map(len, marks))) - sum(len(k) for k in known if k is not None)
        out: list[bytes] = [b""] * len(marks)
        at_text = at_marked = 0
        for start, i in where:
            gap = marked[at_marked:start]
            if not text.startswith(gap, at_text):
                raise _Mismatch
            at_text += len(gap)
            length = rest if known[i] is None else len(known[i])  # type: ignore[arg-type]
            out[i] = text[at_text:at_text + length]
            if known[i] is not None and out[i] != known[i]:
                raise _Mismatch
            at_text += length
            at_marked = start + len(marks[i])
        if rest < 0 or text[at_text:] != marked[at_marked:]:
            raise _Mismatch
        return out

    def _list_part(self, run_id: str | None, path: str, values: list[Any], text: bytes) -> Part:
        """The chain of a list whose exact JSON is ``text`` (checked against ``values``)."""
        key = (run_id, path)
        last = self._last.pop(key, None)
        base = None
        if last is not None:
            self._last_bytes -= len(last.head)
            n = len(last.head)
            # memcmp, not a hash: comparing costs less than hashing the text would
            if len(text) > n and text.startswith(last.head) and (
                    text[n] == _COMMA or (text[n] == _CLOSE and len(values) == last.count)):
                items, tail, joined = _chain(values[last.count:], last.tail, last.tail_name)
                if text[n:] != (b"," + joined + b"]" if items else b"]"):
                    raise _Mismatch
                base = last.tail_name
        if base is None:
            items, tail, joined = _chain(values, _ROOT)
            if text != b"[" + joined + b"]":
                raise _Mismatch
        head = text[:-1]
        tail_name = items[-1][0] if items else last.tail_name  # type: ignore[union-attr]
        self._last[key] = _Last(head, len(values), tail, tail_name)
        self._last_bytes += len(head)
        while self._last_bytes > _REMEMBERED_BYTES and len(self._last) > 1:
            oldest = next(iter(self._last))
            self._last_bytes -= len(self._last.pop(oldest).head)
        return Part(tail_name, items, base, text)
