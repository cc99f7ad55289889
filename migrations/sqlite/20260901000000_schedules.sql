-- Schedule entries, their run state and change tracking (SQLite).
-- One row per entry; the columns are the keys of a YAML entry. JSON-shaped
-- fields are JSON text. Constraints reject what can be checked in SQL; the
-- rest (cron syntax, time zones, durations) is checked by metronome, which
-- skips and reports rows that do not validate.

-- A single row whose version is bumped by every change; metronome polls it.
CREATE TABLE metronome_meta (
    id      integer PRIMARY KEY CHECK (id = 1),
    version integer NOT NULL
);
INSERT INTO metronome_meta (id, version) VALUES (1, 0);

CREATE TABLE metronome_schedule (
    name        text PRIMARY KEY
                CHECK (length(name) BETWEEN 1 AND 200 AND instr(name, '/') = 0),
    task        text NOT NULL CHECK (length(trim(task)) > 0),
    cron        text,
    crontab     text CHECK (crontab IS NULL OR (json_valid(crontab) AND json_type(crontab) = 'object')),
    every       text,
    solar       text CHECK (solar IS NULL OR (json_valid(solar) AND json_type(solar) = 'object')),
    at          text,
    timezone    text,
    args        text NOT NULL DEFAULT '[]' CHECK (json_valid(args) AND json_type(args) = 'array'),
    kwargs      text NOT NULL DEFAULT '{}' CHECK (json_valid(kwargs) AND json_type(kwargs) = 'object'),
    options     text NOT NULL DEFAULT '{}' CHECK (json_valid(options) AND json_type(options) = 'object'),
    enabled     boolean NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    start_at    text,
    end_at      text,
    misfire     text CHECK (misfire IN ('skip', 'once', 'all')),
    grace       text,
    jitter      text,
    dst         text CHECK (dst IS NULL OR (json_valid(dst) AND json_type(dst) = 'object')),
    description text,
    -- Set by trigger on every insert and update: which rows changed.
    version     integer NOT NULL DEFAULT 0,
    updated_at  text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT metronome_schedule_one_kind CHECK (
        (cron IS NOT NULL) + (crontab IS NOT NULL) + (every IS NOT NULL)
        + (solar IS NOT NULL) + (at IS NOT NULL) = 1),
    CONSTRAINT metronome_schedule_priority CHECK (
        json_type(options, '$.priority') IS NULL
        OR (json_type(options, '$.priority') = 'integer'
            AND json_extract(options, '$.priority') BETWEEN 0 AND 255))
);
CREATE INDEX metronome_schedule_by_version ON metronome_schedule (version);

-- Names deleted, with the version of the deletion, so pollers see removals.
CREATE TABLE metronome_schedule_deleted (
    name    text PRIMARY KEY,
    version integer NOT NULL
);
CREATE INDEX metronome_schedule_deleted_by_version ON metronome_schedule_deleted (version);

CREATE TRIGGER metronome_schedule_insert AFTER INSERT ON metronome_schedule
BEGIN
    UPDATE metronome_meta SET version = version + 1 WHERE id = 1;
    UPDATE metronome_schedule
       SET version = (SELECT version FROM metronome_meta WHERE id = 1),
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE name = NEW.name;
    DELETE FROM metronome_schedule_deleted WHERE name = NEW.name;
END;

-- Fires for writes that did not set the version themselves (every write but
-- the triggers' own), so raw SQL edits are seen too.
CREATE TRIGGER metronome_schedule_update AFTER UPDATE ON metronome_schedule
WHEN NEW.version = OLD.version
BEGIN
    UPDATE metronome_meta SET version = version + 1 WHERE id = 1;
    UPDATE metronome_schedule
       SET version = (SELECT version FROM metronome_meta WHERE id = 1),
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
     WHERE name = NEW.name;
    INSERT OR REPLACE INTO metronome_schedule_deleted (name, version)
        SELECT OLD.name, (SELECT version FROM metronome_meta WHERE id = 1)
         WHERE OLD.name <> NEW.name;
END;

CREATE TRIGGER metronome_schedule_delete AFTER DELETE ON metronome_schedule
BEGIN
    UPDATE metronome_meta SET version = version + 1 WHERE id = 1;
    INSERT OR REPLACE INTO metronome_schedule_deleted (name, version)
        VALUES (OLD.name, (SELECT version FROM metronome_meta WHERE id = 1));
END;

-- Run state per entry (of every source) when a database is configured.
-- Instants are RFC 3339 text in UTC.
CREATE TABLE metronome_state (
    name         text PRIMARY KEY,
    cursor_at    text,
    last_run     text,
    last_sent_at text,
    total_runs   integer NOT NULL DEFAULT 0 CHECK (total_runs >= 0),
    last_error   text,
    anchor       text,
    timing_key   text NOT NULL DEFAULT '',
    updated_at   text NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
