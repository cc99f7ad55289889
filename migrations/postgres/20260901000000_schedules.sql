-- Schedule entries, their run state and change tracking (PostgreSQL).
-- One row per entry; the columns are the keys of a YAML entry. JSON-shaped
-- fields are jsonb. Constraints reject what can be checked in SQL; the rest
-- (cron syntax, time zones, durations) is checked by metronome, which skips
-- and reports rows that do not validate.

CREATE SEQUENCE metronome_schedule_version;

CREATE TABLE metronome_schedule (
    name        text PRIMARY KEY
                CHECK (length(name) BETWEEN 1 AND 200 AND strpos(name, '/') = 0),
    task        text NOT NULL CHECK (length(btrim(task)) > 0),
    cron        text,
    crontab     jsonb CHECK (crontab IS NULL OR jsonb_typeof(crontab) = 'object'),
    every       text,
    solar       jsonb CHECK (solar IS NULL OR jsonb_typeof(solar) = 'object'),
    at          text,
    timezone    text,
    args        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(args) = 'array'),
    kwargs      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(kwargs) = 'object'),
    options     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    enabled     boolean NOT NULL DEFAULT true,
    start_at    text,
    end_at      text,
    misfire     text CHECK (misfire IN ('skip', 'once', 'all')),
    grace       text,
    jitter      text,
    dst         jsonb CHECK (dst IS NULL OR jsonb_typeof(dst) = 'object'),
    description text,
    -- Set by trigger on every insert and update: which rows changed.
    version     bigint NOT NULL DEFAULT nextval('metronome_schedule_version'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT metronome_schedule_one_kind
        CHECK (num_nonnulls(cron, crontab, every, solar, at) = 1),
    CONSTRAINT metronome_schedule_priority CHECK (
        NOT (options ? 'priority')
        OR (jsonb_typeof(options -> 'priority') = 'number'
            AND (options ->> 'priority')::numeric BETWEEN 0 AND 255
            AND (options ->> 'priority')::numeric = trunc((options ->> 'priority')::numeric)))
);

-- Every write gets a fresh version and timestamp, whoever makes it (raw SQL
-- included), and is announced to listening metronome instances.
CREATE FUNCTION metronome_schedule_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('metronome_schedule_version');
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER metronome_schedule_stamp
    BEFORE INSERT OR UPDATE ON metronome_schedule
    FOR EACH ROW EXECUTE FUNCTION metronome_schedule_stamp();

-- The payload is the entry's name (at most 200 characters, well under
-- NOTIFY's 8000-byte limit); listeners fetch the row themselves.
CREATE FUNCTION metronome_schedule_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('metronome_schedule', OLD.name);
    ELSE
        PERFORM pg_notify('metronome_schedule', NEW.name);
        IF TG_OP = 'UPDATE' AND OLD.name <> NEW.name THEN
            PERFORM pg_notify('metronome_schedule', OLD.name);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER metronome_schedule_notify
    AFTER INSERT OR UPDATE OR DELETE ON metronome_schedule
    FOR EACH ROW EXECUTE FUNCTION metronome_schedule_notify();

-- TRUNCATE fires no row triggers: announce it so listeners resync in full.
CREATE FUNCTION metronome_schedule_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('metronome_schedule', '');
    RETURN NULL;
END $$;

CREATE TRIGGER metronome_schedule_notify_truncate
    AFTER TRUNCATE ON metronome_schedule
    FOR EACH STATEMENT EXECUTE FUNCTION metronome_schedule_notify_truncate();

-- Run state per entry (of every source) when a database is configured.
-- Instants are RFC 3339 text in UTC.
CREATE TABLE metronome_state (
    name         text PRIMARY KEY,
    cursor_at    text,
    last_run     text,
    last_sent_at text,
    total_runs   bigint NOT NULL DEFAULT 0 CHECK (total_runs >= 0),
    last_error   text,
    anchor       text,
    timing_key   text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
