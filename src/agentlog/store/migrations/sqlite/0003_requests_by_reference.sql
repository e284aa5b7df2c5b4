-- agentlog schema, version 3 (SQLite): requests stored by reference.
-- Every LLM call resends the conversation so far, so storing each llm.started
-- payload whole made a run's store grow with the square of its length. Now the
-- long parts of a request (its message lists, its tool schemas, a long system
-- prompt) are kept once, as chains of items, and the payload keeps a reference.
-- The public views return exactly what they returned before: the `events` view's
-- `payload` and `llm_calls.request` rebuild the request as sent, for rows written
-- by reference and for older rows (stored whole) alike. See docs/schema.md.

-- One item of a list (a message, a tool schema) or one long value, as the JSON that was
-- in the request (after redaction and processors). `hash` covers the item's JSON and its
-- parent's hash, so an item names the whole list up to it, and a list that grows by a few
-- messages per call adds a few items, however long it is. Items are shared by every call,
-- run and writer that sent the same list; they are only ever added, never changed.
CREATE TABLE al_request_items (
    hash   TEXT PRIMARY KEY,
    parent TEXT,
    item   TEXT NOT NULL
);

-- NULL for a payload stored whole. Otherwise a JSON array of [path, tail hash, count]:
-- the value at `path` in `payload` (a JSON null there) is the list of the `count` items
-- that end at `tail`, oldest first, or (count -1) the one item `tail` itself.
ALTER TABLE al_events ADD COLUMN refs TEXT;

DROP VIEW events;
CREATE VIEW events AS
SELECT
    e.event_id,
    e.run_id,
    e.turn_id,
    e.span_id,
    e.seq,
    strftime('%Y-%m-%dT%H:%M:%S', e.ts / 1000000, 'unixepoch') || printf('.%06dZ', e.ts % 1000000) AS ts,
    e.type,
    CASE WHEN e.refs IS NULL THEN e.payload ELSE (
        WITH RECURSIVE
        ref (i, path, tail, n) AS (
            SELECT r.key, r.value ->> 0, r.value ->> 1, r.value ->> 2 FROM json_each(e.refs) r
        ),
        walk (i, k, parent, item) AS (
            SELECT ref.i, 0, m.parent, m.item FROM ref JOIN al_request_items m ON m.hash = ref.tail
            UNION ALL
            SELECT w.i, w.k + 1, m.parent, m.item
            FROM walk w JOIN al_request_items m ON m.hash = w.parent
        ),
        fold (i, doc) AS (
            SELECT 0, e.payload
            UNION ALL
            SELECT f.i + 1, json_set(f.doc, ref.path, json(CASE WHEN ref.n < 0
                THEN (SELECT item FROM walk WHERE walk.i = f.i AND walk.k = 0)
                -- group_concat takes the rows in the order of its subquery: oldest item first
                ELSE '[' || (SELECT group_concat(item, ',') FROM
                                (SELECT item FROM walk WHERE walk.i = f.i ORDER BY walk.k DESC)) || ']'
                END))
            FROM fold f JOIN ref ON ref.i = f.i
        )
        SELECT doc FROM fold ORDER BY i DESC LIMIT 1
    ) END AS payload,
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

DROP VIEW llm_calls;
CREATE VIEW llm_calls AS
SELECT
    s.span_id,
    s.run_id,
    s.turn_id,
    s.provider,
    s.model,
    (SELECT json_extract(e.payload, '$.request') FROM events e
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
