-- The control plane's change log: one row per committed change of a model,
-- a feature view, an endpoint or a drift monitor, written by triggers in
-- the transaction that makes the change, so that no change commits without
-- its row, whichever replica (or person at psql) made it. Each row wakes
-- the replicas' listeners through NOTIFY on channel mlgate_changes; a
-- listener that was away reads the rows after the last revision it saw.
CREATE TABLE control_changes (
    revision bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind     text NOT NULL,
    name     text NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- control_change(kind) logs a change of the row's name. The advisory lock,
-- held until commit, makes changing transactions take their revisions in
-- the order they commit, so a reader that has seen revision n has seen
-- every revision below it.
CREATE FUNCTION control_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD.name;
    ELSE
        changed := NEW.name;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('mlgate control_changes', 0));
    INSERT INTO control_changes (kind, name) VALUES (TG_ARGV[0], changed);
    PERFORM pg_notify('mlgate_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER registry_models_changed AFTER INSERT OR UPDATE OR DELETE ON registry_models
    FOR EACH ROW EXECUTE FUNCTION control_change('model');
CREATE TRIGGER featurestore_views_changed AFTER INSERT OR UPDATE OR DELETE ON featurestore_views
    FOR EACH ROW EXECUTE FUNCTION control_change('view');
CREATE TRIGGER router_endpoints_changed AFTER INSERT OR UPDATE OR DELETE ON router_endpoints
    FOR EACH ROW EXECUTE FUNCTION control_change('endpoint');
CREATE TRIGGER drift_monitors_changed AFTER INSERT OR UPDATE OR DELETE ON drift_monitors
    FOR EACH ROW EXECUTE FUNCTION control_change('monitor');
