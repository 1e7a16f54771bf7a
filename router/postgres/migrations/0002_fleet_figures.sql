-- The figures every replica of a fleet publishes, so that each reads the
-- others'.

-- One row per replica and revision of an endpoint: the router.StatsSnapshot
-- of the requests that replica routed by that revision (jsonb: it is read
-- back as numbers, never shown as written), refreshed every second, when
-- updated_at is set. A replica deletes its rows of the revisions it no
-- longer serves; rows nobody refreshed for a day (a replica gone) are
-- deleted by any replica. No foreign key to router_endpoints: a replica may
-- publish the figures of an endpoint another one deleted a moment ago.
CREATE TABLE router_fleet_figures (
    endpoint   text COLLATE "C" NOT NULL,
    revision   integer NOT NULL,
    replica    text COLLATE "C" NOT NULL,
    stats      jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (endpoint, revision, replica)
);
