-- 0002: full-text index of the knowledge documents (knowledge/*.md), one row per section.
-- kb_documents remembers each file's hash, so a changed file is indexed again and an unchanged
-- one is not.

CREATE TABLE kb_documents (
    path TEXT PRIMARY KEY,                        -- file name inside the knowledge directory
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    indexed_at TEXT NOT NULL
);

-- Ranked with bm25(kb_passages, 0, 1, 4, 1): a match in a section heading counts four times.
CREATE VIRTUAL TABLE kb_passages USING fts5 (
    path UNINDEXED,
    title,
    heading,
    body,
    tokenize = 'porter unicode61'
);
