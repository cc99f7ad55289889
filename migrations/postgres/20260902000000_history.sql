-- Run history per entry: the latest outcomes (sent, skipped and why, ...)
-- as a JSON array, oldest first, bounded by metronome's --history.
ALTER TABLE metronome_state ADD COLUMN history text NOT NULL DEFAULT '[]';
