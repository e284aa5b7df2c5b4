-- agentlog schema, version 1 (SQLite).
-- Internal tables are prefixed al_ and may change in later migrations.
-- The views (runs, turns, spans, events, llm_calls, messages, tool_calls,
-- writers) and the full-text table `search` are the public, stable interface:
-- see docs/schema.md. Times are stored as unix microseconds (UTC) and shown
-- by the views as ISO-8601 text; durations are milliseconds.

CREATE TABLE al_events (
    id                 INTEGER PRIMARY KEY,
    event_id           TEXT    NOT NULL,
    run_id             TEXT,
    turn_id            TEXT,
    span_id            TEXT,
    parent_span_id     TEXT,
    seq                INTEGER NOT NULL,
    ts                 INTEGER NOT NULL,
    type               TEXT    NOT NULL,
    provider           TEXT,
    model              TEXT,
    status             TEXT,
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cached_tokens      INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens   INTEGER,
    cost_usd           REAL,
    duration_ms        REAL,
    payload            TEXT    NOT NULL DEFAULT '{}'
);
-- Time-ordered ids keep this index append-mostly; it makes re-delivery idempotent.
CREATE UNIQUE INDEX al_events_event_id ON al_events (event_id);
CREATE INDEX al_events_run ON al_events (run_id, seq);
CREATE INDEX al_events_span ON al_events (span_id, seq) WHERE span_id IS NOT NULL;
CREATE INDEX al_events_turn ON al_events (turn_id, seq) WHERE turn_id IS NOT NULL;

CREATE TABLE al_runs (
    run_id        TEXT PRIMARY KEY,
    name          TEXT,
    status        TEXT    NOT NULL DEFAULT 'running',
    started_at    INTEGER,
    ended_at      INTEGER,
    last_event_at INTEGER,
    error         TEXT,
    metadata      TEXT,
    tags          TEXT,
    parent_run_id TEXT,
    implicit      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX al_runs_started ON al_runs (started_at);

CREATE TABLE al_turns (
    turn_id    TEXT PRIMARY KEY,
    run_id     TEXT,
    idx        INTEGER,
    status     TEXT NOT NULL DEFAULT 'running',
    started_at INTEGER,
    ended_at   INTEGER,
    error      TEXT,
    metadata   TEXT
);
CREATE INDEX al_turns_run ON al_turns (run_id, idx);

CREATE TABLE al_spans (
    span_id            TEXT PRIMARY KEY,
    run_id             TEXT,
    turn_id            TEXT,
    parent_span_id     TEXT,
    kind               TEXT    NOT NULL,
    name               TEXT,
    status             TEXT    NOT NULL DEFAULT 'running',
    status_seq         INTEGER NOT NULL DEFAULT 0,
    started_at         INTEGER,
    ended_at           INTEGER,
    duration_ms        REAL,
    goal               TEXT,
    label              TEXT,
    attributes         TEXT,
    result             TEXT,
    error              TEXT,
    provider           TEXT,
    model              TEXT,
    response_text      TEXT,
    reasoning_text     TEXT,
    stop_reason        TEXT,
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    cached_tokens      INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens   INTEGER,
    cost_usd           REAL,
    ttft_ms            REAL,
    request_id         TEXT,
    tool_call_id       TEXT,
    arguments          TEXT
);
CREATE INDEX al_spans_run ON al_spans (run_id, kind);
CREATE INDEX al_spans_parent ON al_spans (parent_span_id) WHERE parent_span_id IS NOT NULL;
CREATE INDEX al_spans_tool_call ON al_spans (tool_call_id) WHERE tool_call_id IS NOT NULL;

CREATE TABLE al_span_links (
    span_id        TEXT NOT NULL,
    target_span_id TEXT NOT NULL,
    relation       TEXT NOT NULL DEFAULT 'depends_on',
    run_id         TEXT,
    created_at     INTEGER,
    PRIMARY KEY (span_id, target_span_id, relation)
);

CREATE TABLE al_tool_requests (
    tool_call_id TEXT NOT NULL,
    span_id      TEXT NOT NULL,
    run_id       TEXT,
    turn_id      TEXT,
    name         TEXT,
    arguments    TEXT,
    ts           INTEGER,
    PRIMARY KEY (tool_call_id, span_id)
);
CREATE INDEX al_tool_requests_run ON al_tool_requests (run_id);

-- The conversation, each message stored once per run. msg_hash chains the
-- message's role and content to the hash of the one before it, so the same
-- words at another point in the conversation are a different message.
CREATE TABLE al_messages (
    run_id       TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    msg_hash     TEXT    NOT NULL,
    turn_id      TEXT,
    span_id      TEXT,
    direction    TEXT    NOT NULL,
    role         TEXT,
    content      TEXT,
    tool_call_id TEXT,
    name         TEXT,
    tool_calls   TEXT,
    PRIMARY KEY (run_id, position),
    UNIQUE (run_id, msg_hash)
);

CREATE TABLE al_writers (
    writer_id  TEXT PRIMARY KEY,
    host       TEXT,
    pid        INTEGER,
    started_at INTEGER,
    updated_at INTEGER,
    written    INTEGER NOT NULL DEFAULT 0,
    dropped    INTEGER NOT NULL DEFAULT 0,
    queued     INTEGER NOT NULL DEFAULT 0,
    stats      TEXT
);

CREATE VIRTUAL TABLE search USING fts5 (
    body,
    kind UNINDEXED,
    run_id UNINDEXED,
    span_id UNINDEXED,
    event_id UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- ---------------------------------------------------------------- public views
CREATE VIEW runs AS
SELECT
    r.run_id,
    r.name,
    r.status,
    strftime('%Y-%m-%dT%H:%M:%S', r.started_at / 1000000, 'unixepoch') || printf('.%06dZ', r.started_at % 1000000) AS started_at,
    strftime('%Y-%m-%dT%H:%M:%S', r.ended_at / 1000000, 'unixepoch') || printf('.%06dZ', r.ended_at % 1000000) AS ended_at,
    (r.ended_at - r.started_at) / 1000.0 AS duration_ms,
    r.error,
    r.metadata,
    (SELECT count(*) FROM al_spans s WHERE s.run_id = r.run_id AND s.kind = 'llm') AS llm_calls,
    (SELECT count(*) FROM al_spans s WHERE s.run_id = r.run_id AND s.kind = 'tool') AS tool_calls,
    (SELECT sum(s.input_tokens) FROM al_spans s WHERE s.run_id = r.run_id AND s.kind = 'llm') AS input_tokens,
    (SELECT sum(s.output_tokens) FROM al_spans s WHERE s.run_id = r.run_id AND s.kind = 'llm') AS output_tokens,
    (SELECT sum(s.cost_usd) FROM al_spans s WHERE s.run_id = r.run_id AND s.kind = 'llm') AS cost_usd,
    r.tags,
    r.parent_run_id,
    r.implicit,
    strftime('%Y-%m-%dT%H:%M:%S', r.last_event_at / 1000000, 'unixepoch') || printf('.%06dZ', r.last_event_at % 1000000) AS last_event_at
FROM al_runs r;

CREATE VIEW turns AS
SELECT
    t.turn_id,
    t.run_id,
    t.idx AS turn_index,
    t.status,
    strftime('%Y-%m-%dT%H:%M:%S', t.started_at / 1000000, 'unixepoch') || printf('.%06dZ', t.started_at % 1000000) AS started_at,
    strftime('%Y-%m-%dT%H:%M:%S', t.ended_at / 1000000, 'unixepoch') || printf('.%06dZ', t.ended_at % 1000000) AS ended_at,
    (t.ended_at - t.started_at) / 1000.0 AS duration_ms,
    t.error,
    t.metadata
FROM al_turns t;

CREATE VIEW spans AS
SELECT
    s.span_id,
    s.run_id,
    s.turn_id,
    s.parent_span_id,
    s.kind,
    s.name,
    s.status,
    strftime('%Y-%m-%dT%H:%M:%S', s.started_at / 1000000, 'unixepoch') || printf('.%06dZ', s.started_at % 1000000) AS started_at,
    strftime('%Y-%m-%dT%H:%M:%S', s.ended_at / 1000000, 'unixepoch') || printf('.%06dZ', s.ended_at % 1000000) AS ended_at,
    coalesce(s.duration_ms, (s.ended_at - s.started_at) / 1000.0) AS duration_ms,
    s.attributes,
    s.goal,
    s.label,
    s.result,
    s.error
FROM al_spans s;

CREATE VIEW events AS
SELECT
    e.event_id,
    e.run_id,
    e.turn_id,
    e.span_id,
    e.seq,
    strftime('%Y-%m-%dT%H:%M:%S', e.ts / 1000000, 'unixepoch') || printf('.%06dZ', e.ts % 1000000) AS ts,
    e.type,
    e.payload,
    e.parent_span_id,
    e.provider,
    e.model,
    e.status,
    e.input_tokens,
    e.output_tokens,
    e.cached_tokens,
    e.cache_write_tokens,
    e.reasoning_tokens,
    e.cost_usd,
    e.duration_ms
FROM al_events e;

CREATE VIEW llm_calls AS
SELECT
    s.span_id,
    s.run_id,
    s.turn_id,
    s.provider,
    s.model,
    (SELECT json_extract(e.payload, '$.request') FROM al_events e
      WHERE e.span_id = s.span_id AND e.type = 'llm.started' LIMIT 1) AS request,
    coalesce(s.response_text,
             (SELECT group_concat(json_extract(d.payload, '$.text'), '') FROM
                (SELECT payload FROM al_events WHERE span_id = s.span_id AND type = 'llm.delta' ORDER BY seq) d)
    ) AS response_text,
    coalesce(s.reasoning_text,
             (SELECT group_concat(json_extract(d.payload, '$.text'), '') FROM
                (SELECT payload FROM al_events WHERE span_id = s.span_id AND type = 'llm.reasoning' ORDER BY seq) d)
    ) AS reasoning_text,
    s.stop_reason,
    s.input_tokens,
    s.output_tokens,
    s.cached_tokens,
    s.cache_write_tokens,
    s.reasoning_tokens,
    s.cost_usd,
    s.ttft_ms,
    coalesce(s.duration_ms, (s.ended_at - s.started_at) / 1000.0) AS duration_ms,
    s.status,
    s.error,
    strftime('%Y-%m-%dT%H:%M:%S', s.started_at / 1000000, 'unixepoch') || printf('.%06dZ', s.started_at % 1000000) AS started_at,
    s.request_id,
    s.parent_span_id
FROM al_spans s
WHERE s.kind = 'llm';

CREATE VIEW messages AS
SELECT
    m.run_id,
    m.turn_id,
    m.span_id,
    m.position,
    m.role,
    m.content,
    m.tool_call_id,
    m.direction,
    m.name,
    m.tool_calls
FROM al_messages m;

CREATE VIEW tool_calls AS
SELECT
    q.tool_call_id,
    q.run_id,
    coalesce(x.turn_id, q.turn_id) AS turn_id,
    x.span_id,
    coalesce(x.name, q.name) AS name,
    coalesce(x.arguments, q.arguments) AS arguments,
    x.result,
    coalesce(x.status, 'requested') AS status,
    x.error,
    x.duration_ms,
    q.span_id AS llm_span_id,
    strftime('%Y-%m-%dT%H:%M:%S', coalesce(x.started_at, q.ts) / 1000000, 'unixepoch') || printf('.%06dZ', coalesce(x.started_at, q.ts) % 1000000) AS started_at
FROM al_tool_requests q
LEFT JOIN al_spans x ON x.kind = 'tool' AND x.tool_call_id = q.tool_call_id AND x.run_id = q.run_id
UNION ALL
SELECT
    x.tool_call_id,
    x.run_id,
    x.turn_id,
    x.span_id,
    x.name,
    x.arguments,
    x.result,
    x.status,
    x.error,
    x.duration_ms,
    NULL,
    strftime('%Y-%m-%dT%H:%M:%S', x.started_at / 1000000, 'unixepoch') || printf('.%06dZ', x.started_at % 1000000)
FROM al_spans x
WHERE x.kind = 'tool'
  AND (x.tool_call_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM al_tool_requests q
                      WHERE q.tool_call_id = x.tool_call_id AND q.run_id = x.run_id));

CREATE VIEW writers AS
SELECT
    w.writer_id,
    w.host,
    w.pid,
    strftime('%Y-%m-%dT%H:%M:%S', w.started_at / 1000000, 'unixepoch') || printf('.%06dZ', w.started_at % 1000000) AS started_at,
    strftime('%Y-%m-%dT%H:%M:%S', w.updated_at / 1000000, 'unixepoch') || printf('.%06dZ', w.updated_at % 1000000) AS updated_at,
    w.written,
    w.dropped,
    w.queued,
    w.stats
FROM al_writers w;
