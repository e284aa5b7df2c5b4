-- agentlog schema, version 2 (SQLite): tool approvals and annotations, the task graph.
-- Adds columns at the end of `spans` and `tool_calls`, and the views `span_tree`,
-- `status_history` and `span_links` (see docs/schema.md).

-- The last approval decision of a tool call (all of them are tool.approval events),
-- and the fields attached with span.annotate(), merged (RFC 7396: null removes a field).
ALTER TABLE al_spans ADD COLUMN annotations TEXT;
ALTER TABLE al_spans ADD COLUMN approval TEXT;
ALTER TABLE al_spans ADD COLUMN approval_by TEXT;
ALTER TABLE al_spans ADD COLUMN approval_reason TEXT;

CREATE INDEX al_span_links_run ON al_span_links (run_id);

DROP VIEW spans;
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
    s.error,
    s.annotations
FROM al_spans s;

DROP VIEW tool_calls;
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
    strftime('%Y-%m-%dT%H:%M:%S', coalesce(x.started_at, q.ts) / 1000000, 'unixepoch') || printf('.%06dZ', coalesce(x.started_at, q.ts) % 1000000) AS started_at,
    q.arguments AS requested_arguments,
    x.approval,
    x.approval_by,
    x.approval_reason,
    x.annotations
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
    strftime('%Y-%m-%dT%H:%M:%S', x.started_at / 1000000, 'unixepoch') || printf('.%06dZ', x.started_at % 1000000),
    NULL,
    x.approval,
    x.approval_by,
    x.approval_reason,
    x.annotations
FROM al_spans x
WHERE x.kind = 'tool'
  AND (x.tool_call_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM al_tool_requests q
                      WHERE q.tool_call_id = x.tool_call_id AND q.run_id = x.run_id));

-- Every span of every run with its place in the run's tree: depth (0 for a root),
-- position ("1.2.3": the span's rank by start time among its siblings, at each
-- level), path (the span ids from the root, '/'-separated) and sort_key (ORDER BY
-- it for depth-first order). A span whose parent is not in the same run is a root.
-- The view walks the whole store (about 1 s per 100,000 spans): for one run, the
-- query in docs/schema.md (what Store.tree() runs) reads that run's spans only.
CREATE VIEW span_tree AS
WITH RECURSIVE
nodes AS (
    SELECT x.span_id, x.run_id, x.started_at,
           (SELECT p.span_id FROM al_spans p WHERE p.span_id = x.parent_span_id AND p.run_id IS x.run_id)
               AS tree_parent
    FROM al_spans x
),
ranked AS (
    SELECT span_id, tree_parent,
           row_number() OVER (PARTITION BY run_id, tree_parent ORDER BY started_at, span_id) AS rank
    FROM nodes
),
tree (span_id, parent_span_id, depth, position, path, sort_key) AS (
    SELECT span_id, NULL, 0, CAST(rank AS TEXT), span_id, printf('%06d', rank)
    FROM ranked WHERE tree_parent IS NULL
    UNION ALL
    SELECT r.span_id, r.tree_parent, t.depth + 1, t.position || '.' || r.rank, t.path || '/' || r.span_id,
           t.sort_key || '.' || printf('%06d', r.rank)
    FROM ranked r JOIN tree t ON r.tree_parent = t.span_id
)
SELECT
    s.run_id,
    s.span_id,
    t.parent_span_id,
    t.depth,
    t.position,
    t.path,
    t.sort_key,
    s.kind,
    s.name,
    s.label,
    s.goal,
    s.status,
    strftime('%Y-%m-%dT%H:%M:%S', s.started_at / 1000000, 'unixepoch') || printf('.%06dZ', s.started_at % 1000000) AS started_at,
    strftime('%Y-%m-%dT%H:%M:%S', s.ended_at / 1000000, 'unixepoch') || printf('.%06dZ', s.ended_at % 1000000) AS ended_at,
    coalesce(s.duration_ms, (s.ended_at - s.started_at) / 1000.0) AS duration_ms,
    s.result,
    s.error,
    s.turn_id
FROM tree t JOIN al_spans s ON s.span_id = t.span_id;

-- Each status a span went through, in order: `running` when it opened, every
-- set_status(), and the status it closed with. duration_ms is the time until the
-- next one (NULL for the last), i.e. how long the span stayed in that status.
CREATE VIEW status_history AS
SELECT
    h.span_id,
    h.run_id,
    h.seq,
    strftime('%Y-%m-%dT%H:%M:%S', h.ts / 1000000, 'unixepoch') || printf('.%06dZ', h.ts % 1000000) AS ts,
    h.status,
    lag(h.status) OVER w AS previous_status,
    h.note,
    h.type,
    (lead(h.ts) OVER w - h.ts) / 1000.0 AS duration_ms,
    h.fields
FROM (
    SELECT e.span_id, e.run_id, e.seq, e.ts, e.type,
           -- set_status() payloads are small; a closing event's is the whole response
           CASE WHEN e.type = 'span.status' THEN e.payload END AS fields,
           CASE
               WHEN e.type IN ('span.started', 'llm.started', 'tool.started') THEN 'running'
               ELSE coalesce(json_extract(e.payload, '$.status'),
                             CASE e.type WHEN 'llm.error' THEN 'error' WHEN 'tool.failed' THEN 'error'
                                         WHEN 'llm.interrupted' THEN 'interrupted' ELSE 'ok' END)
           END AS status,
           json_extract(e.payload, '$.note') AS note
    FROM al_events e
    WHERE e.span_id IS NOT NULL
      AND e.type IN ('span.started', 'span.status', 'span.finished', 'llm.started', 'llm.finished',
                     'llm.error', 'llm.interrupted', 'tool.started', 'tool.finished', 'tool.failed')
) h
WINDOW w AS (PARTITION BY h.span_id ORDER BY h.seq);

-- Extra edges of the task graph: span.link(target, relation) on span_id.
CREATE VIEW span_links AS
SELECT
    l.span_id,
    l.target_span_id,
    l.relation,
    l.run_id,
    strftime('%Y-%m-%dT%H:%M:%S', l.created_at / 1000000, 'unixepoch') || printf('.%06dZ', l.created_at % 1000000) AS created_at
FROM al_span_links l;
