-- A generic ITIL helpdesk schema with demo data, in SQLite (samples/svi.toml:
-- [[connections]] helpdesk_db). The PostgreSQL form of the same schema is
-- tests/fixtures/helpdesk-postgres.sql; docs/integrations.md maps each helpdesk operation
-- onto these tables. svi runs this script once, when data/helpdesk.db has no table yet.

CREATE TABLE users (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    phone    TEXT UNIQUE,                -- as the PBX sends the caller's number (E.164 here)
    site     TEXT,
    vip      BOOLEAN NOT NULL DEFAULT FALSE,
    language TEXT NOT NULL DEFAULT 'fr'
);

CREATE TABLE tickets (
    number    INTEGER PRIMARY KEY,       -- the ticket number callers key and hear
    user_id   INTEGER REFERENCES users (id),
    phone     TEXT,
    category  TEXT NOT NULL,
    summary   TEXT NOT NULL,
    priority  TEXT NOT NULL,
    recording TEXT,                      -- path of the caller's recorded description
    status    TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL
);

INSERT INTO users (id, name, phone, site, vip, language) VALUES
    (1, 'Ada Lovelace', '+33100000001', 'Paris',  TRUE,  'fr'),
    (2, 'Bob Martin',   '+33100000002', 'Lyon',   FALSE, 'fr'),
    (3, 'Grace Hopper', '+33100000003', 'Nantes', FALSE, 'en');

INSERT INTO tickets (number, user_id, phone, category, summary, priority, status, opened_at) VALUES
    (4711, 2, '+33100000002', 'hardware', 'Laptop does not start', 'normal', 'in_progress', '2026-03-09 09:12:00'),
    (4712, 2, '+33100000002', 'software', 'Mail client crashes',   'normal', 'closed',      '2026-03-09 11:40:00');
