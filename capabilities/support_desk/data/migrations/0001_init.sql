-- 0001: the support desk's tables. Money is in integer cents; times are UTC 'YYYY-MM-DD HH:MM:SS'.

CREATE TABLE plans (
    id TEXT PRIMARY KEY,                          -- 'starter', 'team', 'enterprise'
    name TEXT NOT NULL UNIQUE,
    seat_price_cents INTEGER NOT NULL CHECK (seat_price_cents > 0),   -- per seat per month
    min_seats INTEGER NOT NULL DEFAULT 1 CHECK (min_seats >= 1),
    max_seats INTEGER CHECK (max_seats IS NULL OR max_seats >= min_seats),
    description TEXT NOT NULL
);

-- Volume discounts: the highest tier whose min_seats the quote reaches applies.
CREATE TABLE plan_discounts (
    plan_id TEXT NOT NULL REFERENCES plans(id),
    min_seats INTEGER NOT NULL CHECK (min_seats >= 1),
    percent_off INTEGER NOT NULL CHECK (percent_off BETWEEN 1 AND 100),
    PRIMARY KEY (plan_id, min_seats)
);

CREATE TABLE customers (
    id TEXT PRIMARY KEY CHECK (id GLOB 'C-[0-9]*'),
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    company TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    plan_id TEXT NOT NULL REFERENCES plans(id),
    seats INTEGER NOT NULL CHECK (seats > 0),
    status TEXT NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'cancelled')),
    started_at TEXT NOT NULL,
    renews_at TEXT
);
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_id);

CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    subscription_id TEXT REFERENCES subscriptions(id),
    description TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    status TEXT NOT NULL CHECK (status IN ('open', 'paid', 'void')),
    issued_at TEXT NOT NULL
);
CREATE INDEX invoices_by_customer ON invoices (customer_id, issued_at);

-- A charge is one attempt to take money for an invoice. Two succeeded charges for the same
-- invoice are a duplicate charge.
CREATE TABLE charges (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    invoice_id TEXT REFERENCES invoices(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL DEFAULT 'usd',
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    description TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX charges_by_customer ON charges (customer_id, created_at);

-- Refunds are full refunds: at most one per charge (the UNIQUE constraint is the guarantee that a
-- repeated or resumed request never refunds twice). idempotency_key names the request that made it.
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    charge_id TEXT NOT NULL UNIQUE REFERENCES charges(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE services (
    id TEXT PRIMARY KEY,                          -- 'api', 'dashboard', ...
    name TEXT NOT NULL,
    description TEXT NOT NULL
);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services(id),
    title TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('minor', 'major', 'critical')),
    status TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
    latest_update TEXT NOT NULL,
    started_at TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX incidents_by_service ON incidents (service_id, status);

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    customer_id TEXT REFERENCES customers(id),
    service_id TEXT REFERENCES services(id),
    incident_id TEXT REFERENCES incidents(id),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'solved')),
    idempotency_key TEXT UNIQUE,                  -- NULL for tickets made outside the agent
    created_at TEXT NOT NULL
);

-- Facts about the database itself (e.g. when the demo data was seeded).
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
