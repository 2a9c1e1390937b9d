-- The console's change feed (console/events.rs) reads every reception changed since its
-- cursor, of all institutions, once a second per server instance: an index on the change time
-- keeps that read proportional to the changes, not to the table.
CREATE INDEX receptions_by_change ON receptions (updated_at);
