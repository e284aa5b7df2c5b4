"""The ``agentlog`` command: demo, runs, show, search, stats, doctor, backup.

Every command reads through :func:`agentlog.open`. Errors agentlog raises on
purpose become one line on stderr and exit status 1. Text that comes from the
database (model output, names, tool arguments) passes through :func:`_safe`
before it reaches the terminal, so recorded output cannot drive the terminal.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .errors import AgentlogError, NotFoundError
from .store.queries import GROUPINGS

if TYPE_CHECKING:
    from .events import Event
    from .reader import RunDetail, SpanNode, Store

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

# C0 controls except tab and newline, DEL and the C1 controls: shown as \xNN so
# recorded text can print escape sequences as data but never send them. Bidirectional
# embeddings, overrides and isolates (which reorder what the terminal shows: "Trojan
# Source") and the Unicode line separators are shown as \uNNNN.
_CONTROLS = [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]
_REORDERING = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]
_VISIBLE = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _REORDERING}
_JSON_SAFE = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *_REORDERING)}
# In a table cell a newline would start a row of its own: a stored name could forge one.
_CELL = _VISIBLE | {0x0A: "\\n", 0x09: "\\t"}


def _safe(text: Any) -> str:
    """``text`` as a string with terminal control characters made visible and inert."""
    return str(text).translate(_VISIBLE)


def _echo(text: Any = "") -> None:
    click.echo(_safe(text))


def _echo_json(value: Any) -> None:
    """One JSON line. json escapes C0 controls itself; C1 and DEL are escaped here."""
    click.echo(json.dumps(value, ensure_ascii=False, default=str).translate(_JSON_SAFE))


class _Group(click.Group):
    """Turns agentlog's own errors into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AgentlogError as exc:
            raise click.ClickException(_safe(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentlog")
def main() -> None:
    """agentlog: a local-first flight recorder for LLM agents.

    Runs are recorded into one SQLite file (--db, or $AGENTLOG_DB, or ./agentlog.db).
    Try: agentlog demo, then agentlog show latest.
    """


def _db_option(fn: F) -> F:
    return click.option(
        "--db", default="agentlog.db", envvar="AGENTLOG_DB", show_default=True,
        metavar="PATH", help="The agentlog database file (or $AGENTLOG_DB).",
    )(fn)


def _store(db: str) -> Store:
    from .reader import open_store

    return open_store(db)


# -- formatting ------------------------------------------------------------------------
def _when(iso: str | None) -> str:
    """'2024-05-01T12:03:04.123456Z' -> '2024-05-01 12:03:04'."""
    return iso[:19].replace("T", " ") if iso else "-"


def _clock(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, tz=timezone.utc).strftime("%H:%M:%S.%f")[:12]


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.1f}ms" if ms < 10 else f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _int(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _cost(usd: float | None) -> str:
    if usd is None:
        return "-"
    return f"${usd:.4f}" if usd < 1 else f"${usd:,.2f}"


def _tokens(row: dict[str, Any]) -> str:
    """'1,200 in (800 cached) / 300 out (64 reasoning)' from a row with token columns."""
    text = f"{_int(row.get('input_tokens'))} in"
    if row.get("cached_tokens"):
        text += f" ({_int(row['cached_tokens'])} cached)"
    text += f" / {_int(row.get('output_tokens'))} out"
    if row.get("reasoning_tokens"):
        text += f" ({_int(row['reasoning_tokens'])} reasoning)"
    return text


def _usage_text(row: dict[str, Any]) -> str:
    """'  <tokens>  <cost>' for what the row knows, else ''."""
    text = ""
    if row.get("input_tokens") is not None or row.get("output_tokens") is not None:
        text += f"  {_tokens(row)}"
    if row.get("cost_usd") is not None:
        text += f"  {_cost(row['cost_usd'])}"
    return text


def _one_line(value: Any, limit: int = 100) -> str:
    """A value on one line, shortened: JSON for structures, whitespace collapsed."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _block(text: str, indent: str, width: int, max_lines: int = 8) -> list[str]:
    """Text wrapped to ``width`` and indented, kept to ``max_lines`` lines."""
    import textwrap

    room = max(20, width - len(indent))
    cut = room * max_lines  # enough to fill max_lines: never wrap megabytes to show eight lines
    lines: list[str] = []
    for para in text[:cut].splitlines() or [""]:
        lines.extend(textwrap.wrap(para, room) or [""])
    if len(lines) > max_lines or len(text) > cut:
        lines = [*lines[: max_lines - 1], f"… ({len(text):,} characters in all; see --json)"]
    return [indent + line for line in lines]


def _width() -> int:
    return min(120, max(80, shutil.get_terminal_size((100, 24)).columns))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    """Print aligned columns; ``right`` holds the indexes of right-aligned columns."""
    cells = [[str(c).translate(_CELL) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if i in right else v.ljust(w)
                 for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        return "  ".join(parts).rstrip()

    click.echo(line(headers))
    for row in cells:
        click.echo(line(row))


# -- demo ------------------------------------------------------------------------------
@main.command()
@_db_option
@click.option("--pace", type=click.FloatRange(min=0), default=0.01, show_default=True,
              help="Simulated delay per streamed chunk, in seconds (0 for instant).")
def demo(db: str, pace: float) -> None:
    """Record a scripted support-agent run (no network) into the database.

    Three turns with streamed replies and reasoning, three tool calls (one fails, one approved),
    a sub-agent, a log event, snapshots, token usage and cost.
    """
    from .demo import write_demo

    run_id = write_demo(db, pace=pace)
    click.echo(f"Recorded demo run {run_id} in {_safe(db)}")
    where = "" if db == "agentlog.db" else f" --db {_safe(db)}"
    click.echo(f"See it with: agentlog show {run_id}{where}")


# -- runs ------------------------------------------------------------------------------
@main.command()
@_db_option
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most this many runs.")
@click.option("--status", "-s", help="Only runs with this status (running, ok, error, interrupted).")
@click.option("--name", help="Only runs whose name matches; * is a wildcard.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def runs(db: str, limit: int, status: str | None, name: str | None, as_json: bool) -> None:
    """List recorded runs, newest first."""
    with _store(db) as store:
        found = store.runs(status=status, name=name, limit=limit)
    if as_json:
        for r in found:
            _echo_json(asdict(r))
        return
    if not found:
        click.echo("No runs match." if status or name else "No runs recorded yet (try: agentlog demo).")
        return
    rows = [[r.run_id[:12], r.name or "-", r.status, _when(r.started_at), _duration(r.duration_ms),
             str(r.llm_calls), str(r.tool_calls), f"{_int(r.input_tokens)}/{_int(r.output_tokens)}",
             _cost(r.cost_usd)] for r in found]
    _table(["RUN", "NAME", "STATUS", "STARTED (UTC)", "DURATION", "LLM", "TOOLS", "TOKENS IN/OUT",
            "COST"], rows, right={4, 5, 6, 7, 8})


# -- show ------------------------------------------------------------------------------
@main.command()
@click.argument("run", default="latest")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print the run's full detail as one JSON object.")
def show(run: str, db: str, as_json: bool) -> None:
    """Show one run: header, span tree, conversation, tool calls and events.

    RUN is a run id, a unique prefix of one, or 'latest' (the default).
    """
    with _store(db) as store:
        detail = _find_run(store, run, db)
        events = store.events(detail.run.run_id, types=list(_EVENT_TYPES))
    if as_json:
        _echo_json({**asdict(detail), "events": [e.to_dict() for e in events]})
        return
    width = _width()
    for section in (_header(detail), _span_tree(detail), _conversation(detail, width),
                    _tools(detail, width), _events(detail, events, width)):
        for line in section:
            _echo(line)


def _find_run(store: Store, run: str, db: str) -> RunDetail:
    if not run:
        raise click.BadParameter("give a run id, a unique prefix of one, or 'latest'", param_hint="RUN")
    if run != "latest":
        return store.run(run)
    detail = store.latest_run()
    if detail is None:
        raise NotFoundError(f"No runs in {db} yet (record something first, e.g.: agentlog demo)")
    return detail


def _header(d: RunDetail) -> list[str]:
    r, t = d.run, d.totals
    lines = [f"Run {r.run_id}  {r.name or '(unnamed)'}  [{r.status}]",
             f"  started   {_when(r.started_at)} UTC   ended {_when(r.ended_at)}   "
             f"duration {_duration(r.duration_ms)}"]
    if r.status == "running":  # still going, or its process died: say when it was last heard from
        lines.append(f"  last event {_when(r.last_event_at)} UTC (not finished)")
    if r.error:
        lines.append(f"  error     {_one_line(r.error, 200)}")
    if r.metadata:
        lines.append(f"  metadata  {_one_line(r.metadata, 200)}")
    if r.tags:
        lines.append(f"  tags      {', '.join(map(str, r.tags))}")
    errors = f", {t['errors']} failed" if t["errors"] else ""
    lines.append(f"  calls     {t['llm_calls']} LLM, {t['tool_calls']} tool{errors}   "
                 f"turns {len(d.turns)}")
    usage = _usage_text(t)
    if usage:
        lines.append(f"  usage   {usage}")
    return lines


def _span_tree(d: RunDetail) -> list[str]:
    llm = {c["span_id"]: c for c in d.llm_calls}
    names = {n["span_id"]: n["name"] for root in d.spans for _, n in root.walk()}
    lines = ["", "Spans"]
    by_turn: dict[str | None, list[SpanNode]] = {}
    for node in d.spans:
        by_turn.setdefault(node.span["turn_id"], []).append(node)
    for turn in d.turns:
        lines.append(f"  turn {turn['turn_index']}  {turn['status']}  {_duration(turn['duration_ms'])}"
                     + (f"  {turn['error']}" if turn["error"] else ""))
        lines.extend(_span_lines(by_turn.pop(turn["turn_id"], []), llm, names, depth=2))
    rest = [n for nodes in by_turn.values() for n in nodes]
    if rest and d.turns:
        lines.append("  outside turns")
    lines.extend(_span_lines(rest, llm, names, depth=2 if d.turns else 1))
    if len(lines) == 2:
        lines.append("  (none)")
    return lines


def _span_lines(nodes: list[SpanNode], llm: dict[str, dict[str, Any]], names: dict[str, Any],
                depth: int) -> list[str]:
    lines = []
    for node in nodes:
        lines.append("  " * depth + _span_line(node.span, llm.get(node.span["span_id"])))
        for link in node.links:
            target = names.get(link["target_span_id"]) or link["target_span_id"]
            lines.append("  " * (depth + 1) + f"· {link['relation']} {target}")
        lines.extend(_span_lines(node.children, llm, names, depth + 1))
    return lines


def _span_line(span: dict[str, Any], call: dict[str, Any] | None) -> str:
    name = (call and call["model"]) or span["name"] or "-"
    if span["label"]:
        name = f"{span['label']} {name}"
    text = f"{span['kind']:<5} {name}  {span['status']}  {_duration(span['duration_ms'])}"
    if call is not None:
        text += _usage_text(call)
    elif span["goal"]:
        text += f"  goal: {_one_line(span['goal'], 60)}"
    if span["error"]:
        text += f"  ! {_one_line(span['error'], 80)}"
    return text


def _conversation(d: RunDetail, width: int) -> list[str]:
    models = {c["span_id"]: c["model"] for c in d.llm_calls}
    lines = ["", "Conversation"]
    for m in d.messages:
        who = m["role"] or "?"
        if m["direction"] == "output" and models.get(m["span_id"]):
            who += f" ({models[m['span_id']]})"
        if m["tool_call_id"]:
            who += f" [{m['tool_call_id']}]"
        lines.append(f"  {m['position']:>3}. {who}")
        if m["content"]:
            lines.extend(_block(m["content"], " " * 7, width))
        for call in m["tool_calls"] or ():
            if isinstance(call, dict):
                args = _one_line(call.get("arguments"), width - 20)
                lines.append(f"       -> {call.get('name')}({args})")
    if len(lines) == 2:
        lines.append("  (no messages)")
    return lines


def _tools(d: RunDetail, width: int) -> list[str]:
    if not d.tool_calls:
        return []
    lines = ["", "Tool calls"]
    for t in d.tool_calls:
        lines.append(f"  {t['name']}  {t['status']}  {_duration(t['duration_ms'])}")
        lines.append(f"    args    {_one_line(t['arguments'], width - 12)}")
        if t["error"]:
            lines.append(f"    error   {_one_line(t['error'], width - 12)}")
        elif t["result"] is not None:
            lines.append(f"    result  {_one_line(t['result'], width - 12)}")
        if t["approval"]:
            decision = t["approval"] + (f" by {t['approval_by']}" if t["approval_by"] else "")
            decision += f": {t['approval_reason']}" if t["approval_reason"] else ""
            lines.append(f"    {_one_line(decision, width - 4)}")
        if t["annotations"]:
            lines.append(f"    fields  {_one_line(t['annotations'], width - 12)}")
    return lines


_EVENT_TYPES = ("log", "snapshot", "usage", "span.status")


def _events(d: RunDetail, events: list[Event], width: int) -> list[str]:
    if not events:
        return []
    start = _epoch(d.run.started_at)
    turns = {t["turn_id"]: f"turn {t['turn_index']}" for t in d.turns}
    names = {n["span_id"]: n["name"] for root in d.spans for _, n in root.walk()}
    lines = ["", "Events"]
    for e in events:
        at = f"+{_duration(e.ts / 1000 - start * 1000)}" if start is not None else _clock(e.ts)
        where = turns.get(e.turn_id, "")
        text = _event_text(e, names.get(e.span_id or "") or "?", width - 20)
        lines.append(f"  {at:>8}  {where:<7} {text}")
    return lines


def _field(value: Any) -> str:
    """A log field's value: bare when it is one word, else quoted as JSON (key=value stays readable)."""
    text = _one_line(value, 40)
    if isinstance(value, str) and (not text or " " in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _epoch(iso: str | None) -> float | None:
    """Seconds since the epoch for the views' ISO-8601 UTC times."""
    if not iso:
        return None
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _event_text(e: Event, span_name: str, width: int) -> str:
    p = e.payload
    if e.type == "log":
        fields = " ".join(f"{k}={_field(v)}" for k, v in (p.get("fields") or {}).items())
        return _one_line(f"log {p.get('level', 'info')}: {p.get('message')}  {fields}", width)
    if e.type == "snapshot":
        return _one_line(f"snapshot {p.get('phase')}: {_one_line(p.get('state'), width)}", width)
    if e.type == "span.status":
        note = f" ({p['note']})" if p.get("note") else ""
        return _one_line(f"status {span_name} -> {p.get('status')}{note}", width)
    return _one_line(f"usage:{_usage_text(p)}", width)


# -- search ----------------------------------------------------------------------------
@main.command()
@click.argument("text")
@_db_option
@click.option("--run", "run_id", metavar="RUN", help="Only this run (an id or a unique prefix).")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most this many hits.")
@click.option("--raw", is_flag=True,
              help='TEXT is SQLite FTS5 syntax: "exact phrase", OR, NOT, prefix*, NEAR(a b).')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def search(text: str, db: str, run_id: str | None, limit: int, raw: bool, as_json: bool) -> None:
    """Full-text search over messages, responses, reasoning, tool calls, errors and logs.

    Plain words must all match; the best matches come first.
    """
    with _store(db) as store:
        hits = store.search(text, run_id=run_id, limit=limit, raw=raw)
    if as_json:
        for h in hits:
            _echo_json(asdict(h))
        return
    if not hits:
        click.echo("No matches.")
        return
    rows = [[(h.run_id or "-")[:12], h.kind, _one_line(h.snippet, _width() - 32)] for h in hits]
    _table(["RUN", "FOUND IN", "MATCH"], rows, right=set())


# -- stats -----------------------------------------------------------------------------
@main.command()
@_db_option
@click.option("--by", "group_by", type=click.Choice(list(GROUPINGS)), default="model", show_default=True,
              help="Group LLM calls by model, provider, run or day; or tool calls by tool.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def stats(db: str, group_by: str, as_json: bool) -> None:
    """Totals across all runs: calls, tokens, cost and errors (or tool error rates)."""
    with _store(db) as store:
        rows = store.stats(group_by)
    if as_json:
        for row in rows:
            _echo_json(row)
        return
    if not rows:
        click.echo("Nothing recorded yet (try: agentlog demo).")
    elif group_by == "tool":
        _tool_stats(rows)
    else:
        _llm_stats(rows, group_by)


def _tool_stats(rows: list[dict[str, Any]]) -> None:
    _table(["TOOL", "CALLS", "ERRORS", "ERROR RATE", "MEAN", "P95"], [
        [r["key"] or "-", _int(r["calls"]), _int(r["errors"]), f"{(r['error_rate'] or 0):.0%}",
         _duration(r["mean_duration_ms"]), _duration(r["p95_duration_ms"])] for r in rows
    ], right={1, 2, 3, 4, 5})


def _llm_stats(rows: list[dict[str, Any]], group_by: str) -> None:
    keys = [str(r["key"] or "-") for r in rows]
    if group_by == "run":
        keys = [k[:12] for k in keys]
    _table([group_by.upper(), "CALLS", "ERRORS", "TOKENS IN", "CACHED", "OUT", "REASONING", "COST", "MEAN"], [
        [key, _int(r["calls"]), _int(r["errors"]), _int(r["input_tokens"]), _int(r["cached_tokens"]),
         _int(r["output_tokens"]), _int(r["reasoning_tokens"]), _cost(r["cost_usd"]),
         _duration(r["mean_duration_ms"])] for key, r in zip(keys, rows, strict=True)
    ], right=set(range(1, 9)))


# -- doctor / backup ---------------------------------------------------------------------
@main.command()
@click.argument("db", required=False, envvar="AGENTLOG_DB", default="agentlog.db", metavar="[DB]")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def doctor(db: str, as_json: bool) -> None:
    """Check a store without changing it: integrity, schema, WAL, counters, fallbacks.

    Exit status: 0 healthy, 1 warnings (events were dropped or went to a
    fallback file), 2 the file is damaged, foreign, newer or missing.
    """
    from .doctor import diagnose

    report = diagnose(db)
    if as_json:
        _echo_json(report.to_dict())
    else:
        marks = {"ok": "ok  ", "warning": "WARN", "error": "FAIL"}
        for f in report.findings:
            _echo(f"{marks[f.level]}  {f.check:<10} {f.message}")
        _echo(f"verdict: {report.verdict} ({report.path})")
    raise SystemExit(report.exit_code)


@main.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@_db_option
def backup(dest: str, db: str) -> None:
    """Write a consistent, compact copy of the store to DEST (safe while recording)."""
    from pathlib import Path

    from .store.sqlite import backup as backup_store

    backup_store(Path(db), Path(dest))
    _echo(f"Backed up {db} to {dest}")


if __name__ == "__main__":  # pragma: no cover
    main()
