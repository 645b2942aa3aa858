-- Demo data for the support desk, applied once to a new database after the migrations.
-- Dates are relative to the day the database is created: monthly renewals are charged on the 1st
-- at 00:00 UTC, so "last month" always means the calendar month before the current one.

INSERT INTO plans (id, name, seat_price_cents, min_seats, max_seats, description) VALUES
    ('starter', 'Starter', 1000, 1, 10, 'For small teams getting started: projects, API access, email support.'),
    ('team', 'Team', 2500, 3, NULL, 'For growing teams: everything in Starter plus webhooks, audit log, 99.9% uptime SLA, priority support.'),
    ('enterprise', 'Enterprise', 4500, 20, NULL, 'For organisations: everything in Team plus SSO (SAML), 99.95% uptime SLA, a named account manager.');

INSERT INTO plan_discounts (plan_id, min_seats, percent_off) VALUES
    ('team', 10, 10),
    ('team', 25, 15),
    ('team', 50, 20),
    ('enterprise', 100, 10),
    ('enterprise', 250, 20);

INSERT INTO services (id, name, description) VALUES
    ('api', 'REST API', 'api.tandem.dev: the public REST API and the SDKs that call it'),
    ('dashboard', 'Web dashboard', 'app.tandem.dev: the web application'),
    ('webhooks', 'Webhooks', 'event deliveries to customer endpoints'),
    ('sso', 'Single sign-on', 'SAML and OIDC sign-in for Enterprise workspaces'),
    ('notifications', 'Email notifications', 'notification and digest emails'),
    ('exports', 'Data exports', 'CSV and JSON exports of workspace data');

INSERT INTO customers (id, name, email, company, created_at) VALUES
    ('C-1001', 'Jane Cooper', 'jane@acme.io', 'Acme Inc', datetime('now', '-420 days')),
    ('C-1002', 'Omar Haddad', 'omar@brightpath.co', 'BrightPath', datetime('now', '-300 days')),
    ('C-1003', 'Priya Natarajan', 'priya@nimbuslabs.dev', 'Nimbus Labs', datetime('now', '-700 days')),
    ('C-1004', 'Lukas Becker', 'lukas.becker@fjordsoft.de', 'Fjordsoft GmbH', datetime('now', '-510 days')),
    ('C-1005', 'Mei Chen', 'mei@lanternhq.com', 'Lantern HQ', datetime('now', '-200 days')),
    ('C-1006', 'Diego Alvarez', 'diego@solmarket.mx', 'Sol Market', datetime('now', '-380 days')),
    ('C-1007', 'Aisha Bello', 'aisha@kolaworks.ng', 'Kola Works', datetime('now', '-260 days')),
    ('C-1008', 'Tom Whitaker', 'tom@whitakerlegal.co.uk', 'Whitaker Legal', datetime('now', '-610 days')),
    ('C-1009', 'Sofia Rossi', 'sofia.rossi@vialattea.it', 'Via Lattea SpA', datetime('now', '-900 days')),
    ('C-1010', 'Ben Okafor', 'ben@okafor.dev', NULL, datetime('now', '-9 days'));

INSERT INTO subscriptions (id, customer_id, plan_id, seats, status, started_at, renews_at) VALUES
    ('S-4001', 'C-1001', 'team', 5, 'active', datetime('now', '-420 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4002', 'C-1002', 'starter', 3, 'active', datetime('now', '-300 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4003', 'C-1003', 'enterprise', 60, 'active', datetime('now', '-700 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4004', 'C-1004', 'team', 12, 'active', datetime('now', '-510 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4005', 'C-1005', 'starter', 1, 'active', datetime('now', '-200 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4006', 'C-1006', 'team', 25, 'active', datetime('now', '-380 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4007', 'C-1007', 'starter', 8, 'active', datetime('now', '-260 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4008', 'C-1008', 'team', 3, 'cancelled', datetime('now', '-610 days'), NULL),
    ('S-4009', 'C-1009', 'enterprise', 120, 'active', datetime('now', '-900 days'), datetime('now', 'start of month', '+1 month')),
    ('S-4010', 'C-1010', 'team', 10, 'trialing', datetime('now', '-9 days'), datetime('now', '+5 days'));

INSERT INTO invoices (id, customer_id, subscription_id, description, amount_cents, status, issued_at) VALUES
    ('INV-3001', 'C-1001', 'S-4001', 'Team plan, 5 seats, monthly renewal', 12500, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3002', 'C-1001', 'S-4001', 'Team plan, 5 seats, monthly renewal', 12500, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3003', 'C-1001', 'S-4001', 'Team plan, 5 seats, monthly renewal', 12500, 'paid', datetime('now', 'start of month')),
    ('INV-3011', 'C-1002', 'S-4002', 'Starter plan, 3 seats, monthly renewal', 3000, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3012', 'C-1002', 'S-4002', 'Starter plan, 3 seats, monthly renewal', 3000, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3013', 'C-1002', 'S-4002', 'Starter plan, 3 seats, monthly renewal', 3000, 'paid', datetime('now', 'start of month')),
    ('INV-3021', 'C-1003', 'S-4003', 'Enterprise plan, 60 seats, monthly renewal', 270000, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3022', 'C-1003', 'S-4003', 'Enterprise plan, 60 seats, monthly renewal', 270000, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3023', 'C-1003', 'S-4003', 'Enterprise plan, 60 seats, monthly renewal', 270000, 'paid', datetime('now', 'start of month')),
    ('INV-3031', 'C-1004', 'S-4004', 'Team plan, 12 seats, monthly renewal', 27000, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3032', 'C-1004', 'S-4004', 'Team plan, 12 seats, monthly renewal', 27000, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3033', 'C-1004', 'S-4004', 'Team plan, 12 seats, monthly renewal', 27000, 'paid', datetime('now', 'start of month')),
    ('INV-3034', 'C-1004', 'S-4004', '2 extra Team seats, prorated', 3600, 'paid', datetime('now', '-3 days')),
    ('INV-3041', 'C-1005', 'S-4005', 'Starter plan, 1 seat, monthly renewal', 1000, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3042', 'C-1005', 'S-4005', 'Starter plan, 1 seat, monthly renewal', 1000, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3043', 'C-1005', 'S-4005', 'Starter plan, 1 seat, monthly renewal', 1000, 'paid', datetime('now', 'start of month')),
    ('INV-3051', 'C-1006', 'S-4006', 'Team plan, 25 seats, monthly renewal', 53125, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3052', 'C-1006', 'S-4006', 'Team plan, 25 seats, monthly renewal', 53125, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3053', 'C-1006', 'S-4006', 'Team plan, 25 seats, monthly renewal', 53125, 'paid', datetime('now', 'start of month')),
    ('INV-3061', 'C-1007', 'S-4007', 'Starter plan, 8 seats, monthly renewal', 8000, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3062', 'C-1007', 'S-4007', 'Starter plan, 8 seats, monthly renewal', 8000, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3063', 'C-1007', 'S-4007', 'Starter plan, 8 seats, monthly renewal', 8000, 'paid', datetime('now', 'start of month')),
    ('INV-3071', 'C-1008', 'S-4008', 'Team plan, 3 seats, monthly renewal', 7500, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3081', 'C-1009', 'S-4009', 'Enterprise plan, 120 seats, monthly renewal', 486000, 'paid', datetime('now', 'start of month', '-2 months')),
    ('INV-3082', 'C-1009', 'S-4009', 'Enterprise plan, 120 seats, monthly renewal', 486000, 'paid', datetime('now', 'start of month', '-1 month')),
    ('INV-3083', 'C-1009', 'S-4009', 'Enterprise plan, 120 seats, monthly renewal', 486000, 'paid', datetime('now', 'start of month'));

INSERT INTO charges (id, customer_id, invoice_id, amount_cents, status, description, created_at) VALUES
    ('CH-2001', 'C-1001', 'INV-3001', 12500, 'succeeded', 'Team plan, 5 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2002', 'C-1001', 'INV-3002', 12500, 'succeeded', 'Team plan, 5 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2003', 'C-1001', 'INV-3002', 12500, 'succeeded', 'Team plan, 5 seats, monthly renewal', datetime('now', 'start of month', '-1 month', '+4 minutes')),
    ('CH-2004', 'C-1001', 'INV-3003', 12500, 'succeeded', 'Team plan, 5 seats, monthly renewal', datetime('now', 'start of month')),
    ('CH-2011', 'C-1002', 'INV-3011', 3000, 'succeeded', 'Starter plan, 3 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2012', 'C-1002', 'INV-3012', 3000, 'succeeded', 'Starter plan, 3 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2013', 'C-1002', 'INV-3012', 3000, 'succeeded', 'Starter plan, 3 seats, monthly renewal', datetime('now', 'start of month', '-1 month', '+4 minutes')),
    ('CH-2014', 'C-1002', 'INV-3013', 3000, 'succeeded', 'Starter plan, 3 seats, monthly renewal', datetime('now', 'start of month')),
    ('CH-2021', 'C-1003', 'INV-3021', 270000, 'succeeded', 'Enterprise plan, 60 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2022', 'C-1003', 'INV-3022', 270000, 'succeeded', 'Enterprise plan, 60 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2023', 'C-1003', 'INV-3023', 270000, 'succeeded', 'Enterprise plan, 60 seats, monthly renewal', datetime('now', 'start of month')),
    ('CH-2031', 'C-1004', 'INV-3031', 27000, 'succeeded', 'Team plan, 12 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2032', 'C-1004', 'INV-3032', 27000, 'succeeded', 'Team plan, 12 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2033', 'C-1004', 'INV-3033', 27000, 'succeeded', 'Team plan, 12 seats, monthly renewal', datetime('now', 'start of month')),
    ('CH-2034', 'C-1004', 'INV-3034', 3600, 'succeeded', '2 extra Team seats, prorated', datetime('now', '-3 days')),
    ('CH-2041', 'C-1005', 'INV-3041', 1000, 'succeeded', 'Starter plan, 1 seat, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2042', 'C-1005', 'INV-3042', 1000, 'succeeded', 'Starter plan, 1 seat, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2043', 'C-1005', 'INV-3043', 1000, 'succeeded', 'Starter plan, 1 seat, monthly renewal', datetime('now', 'start of month')),
    ('CH-2051', 'C-1006', 'INV-3051', 53125, 'succeeded', 'Team plan, 25 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2052', 'C-1006', 'INV-3052', 53125, 'succeeded', 'Team plan, 25 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2053', 'C-1006', 'INV-3053', 53125, 'failed', 'Card declined: insufficient funds', datetime('now', 'start of month')),
    ('CH-2054', 'C-1006', 'INV-3053', 53125, 'succeeded', 'Team plan, 25 seats, monthly renewal (retry)', min(datetime('now', 'start of month', '+2 days'), datetime('now'))),
    ('CH-2061', 'C-1007', 'INV-3061', 8000, 'succeeded', 'Starter plan, 8 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2062', 'C-1007', 'INV-3062', 8000, 'succeeded', 'Starter plan, 8 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2063', 'C-1007', 'INV-3063', 8000, 'succeeded', 'Starter plan, 8 seats, monthly renewal', datetime('now', 'start of month')),
    ('CH-2071', 'C-1008', 'INV-3071', 7500, 'succeeded', 'Team plan, 3 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2081', 'C-1009', 'INV-3081', 486000, 'succeeded', 'Enterprise plan, 120 seats, monthly renewal', datetime('now', 'start of month', '-2 months')),
    ('CH-2082', 'C-1009', 'INV-3082', 486000, 'succeeded', 'Enterprise plan, 120 seats, monthly renewal', datetime('now', 'start of month', '-1 month')),
    ('CH-2083', 'C-1009', 'INV-3083', 486000, 'succeeded', 'Enterprise plan, 120 seats, monthly renewal', datetime('now', 'start of month'));

-- Lukas Becker's renewal two months ago was refunded when he downsized (refund ids continue at R-7002).
INSERT INTO refunds (id, charge_id, customer_id, amount_cents, reason, idempotency_key, created_at) VALUES
    (7001, 'CH-2031', 'C-1004', 27000, 'Seats bought by mistake, refunded within 30 days', 'desk:T-4990',
     datetime('now', 'start of month', '-2 months', '+5 days'));

INSERT INTO incidents (id, service_id, title, severity, status, latest_update, started_at, resolved_at) VALUES
    ('INC-301', 'api', 'Elevated HTTP 500 errors on the REST API', 'major', 'investigating',
     'About 8% of API requests return HTTP 500 after a faulty deploy of the request router. We are rolling it back; retries with exponential backoff succeed. Next update within 30 minutes.',
     datetime('now', '-95 minutes'), NULL),
    ('INC-302', 'webhooks', 'Delayed webhook deliveries', 'minor', 'monitoring',
     'Webhook deliveries were delayed by up to 20 minutes. A fix is deployed and the backlog is draining; no events were lost.',
     datetime('now', '-6 hours'), NULL),
    ('INC-299', 'dashboard', 'Dashboard charts not loading', 'minor', 'resolved',
     'Charts on project dashboards did not load for some workspaces. Fixed by a cache flush.',
     datetime('now', '-2 days', '-3 hours'), datetime('now', '-2 days', '-1 hours')),
    ('INC-297', 'sso', 'SSO sign-in failing for some Okta tenants', 'major', 'resolved',
     'An expired signing certificate broke SAML sign-in for some Okta tenants. The certificate was rotated.',
     datetime('now', '-5 days', '-4 hours'), datetime('now', '-5 days', '-2 hours'));

-- Ticket ids continue at T-5005.
INSERT INTO tickets (id, customer_id, service_id, incident_id, subject, body, priority, status, idempotency_key, created_at) VALUES
    (5001, 'C-1001', NULL, NULL, 'Change the billing address on invoices',
     'Please put our new office address on future invoices.', 'low', 'solved', NULL, datetime('now', '-40 days')),
    (5002, 'C-1006', NULL, NULL, 'Card declined on renewal',
     'Our renewal failed with card declined; we updated the card.', 'normal', 'pending', NULL, min(datetime('now', 'start of month', '+1 hours'), datetime('now'))),
    (5003, 'C-1003', 'api', 'INC-301', 'HTTP 500 on POST /v2/projects',
     'Our nightly sync gets HTTP 500 from POST /v2/projects since this morning.', 'high', 'open', NULL, datetime('now', '-80 minutes')),
    (5004, 'C-1002', NULL, NULL, 'How do I add seats?',
     'We are hiring two people; how do we add seats to Starter?', 'low', 'solved', NULL, datetime('now', '-20 days'));

INSERT INTO meta (key, value) VALUES ('seeded_at', datetime('now'));
