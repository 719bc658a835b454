-- Demo data for the sample data sources (samples/svi.toml: [[data_sources]] directory and
-- appointments). svi runs this script once, when data/sample.db has no table yet: delete
-- data/sample.db to start again from this file. SQLite has no boolean type: vip and
-- confirmed are 0/1, and the connectors list them in `booleans` so flows see true/false.

CREATE TABLE directory (
    number   TEXT PRIMARY KEY,          -- caller number as the PBX sends it (E.164 here)
    name     TEXT NOT NULL,
    vip      INTEGER NOT NULL DEFAULT 0 CHECK (vip IN (0, 1)),
    language TEXT NOT NULL DEFAULT 'fr'
);

INSERT INTO directory (number, name, vip, language) VALUES
    ('+33100000001', 'Ada Lovelace',   1, 'fr'),   -- VIP: straight to the priority queue
    ('+33100000002', 'Bob Martin',     0, 'fr'),   -- standard user: main menu
    ('+33100000003', 'Grace Hopper',   0, 'en'),
    ('+33100000004', 'Alan Turing',    1, 'en');

CREATE TABLE appointments (
    host_extension TEXT NOT NULL,       -- extension of the person visited
    date           TEXT NOT NULL,       -- 'YYYY-MM-DD', as flows write `now.date`
    visitor        TEXT NOT NULL,
    confirmed      INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1))
);
CREATE INDEX appointments_host_date ON appointments (host_extension, date);

INSERT INTO appointments (host_extension, date, visitor, confirmed) VALUES
    ('4321', '2026-03-10', 'Grace Hopper', 1),
    -- Today's appointments, dated when this script runs (the server's local date), so a
    -- fresh demo database always has a confirmed visitor for 4321 and an unconfirmed one
    -- for 4322.
    ('4321', date('now', 'localtime'), 'Demo Visitor', 1),
    ('4322', date('now', 'localtime'), 'Unexpected Visitor', 0);

-- Callback requests left by callers (an example `sql` action in docs/connectors.md).
CREATE TABLE callbacks (
    number   TEXT NOT NULL,
    queue    TEXT NOT NULL,
    asked_at TEXT NOT NULL               -- UTC, 'YYYY-MM-DD HH:MM:SS'
);
