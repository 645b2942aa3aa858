-- What a user or an operator said about a turn: one row per run id (the latest word counts).
CREATE TABLE feedback (
    run_id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('good', 'bad', 'correct', 'out_of_scope')),
    correct TEXT NOT NULL,
    note TEXT,
    source TEXT NOT NULL
);
CREATE INDEX feedback_created_at ON feedback (created_at);
