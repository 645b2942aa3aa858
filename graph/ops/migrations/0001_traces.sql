-- One row per finished turn, written by the graph's terminal node (graph/ops/traces.py).
-- Portable SQL: the same text runs on SQLite and PostgreSQL. JSON columns are TEXT.
CREATE TABLE traces (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT,
    user_id TEXT,
    turn INTEGER,
    started_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    request TEXT,
    task TEXT,
    stop_reason TEXT NOT NULL,
    selected TEXT NOT NULL,
    top_capability TEXT,
    top_score DOUBLE PRECISION,
    candidates TEXT NOT NULL,
    plan TEXT NOT NULL,
    steps TEXT NOT NULL,
    approvals TEXT NOT NULL,
    approval_wait_s DOUBLE PRECISION NOT NULL,
    errors TEXT NOT NULL,
    notes TEXT NOT NULL,
    llm_calls INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    node_steps INTEGER NOT NULL,
    timings_ms TEXT NOT NULL,
    registry_fingerprint TEXT NOT NULL,
    experiment TEXT,
    variant TEXT
);
CREATE INDEX traces_started_at ON traces (started_at);
CREATE INDEX traces_thread_id ON traces (thread_id);
CREATE INDEX traces_experiment ON traces (experiment, variant);
