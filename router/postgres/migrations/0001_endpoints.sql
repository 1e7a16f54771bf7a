-- The router's endpoints and their histories.

-- One row per endpoint: the router.Endpoint as the JSON the router wrote
-- (json, not jsonb, so that a policy comes back byte for byte, its keys in
-- their order). The name sorts bytewise ("C").
CREATE TABLE router_endpoints (
    name     text COLLATE "C" PRIMARY KEY,
    endpoint json NOT NULL
);

-- Every endpoint's revisions, as written, in the order their Saves
-- committed (seq); deleting the endpoint deletes them.
CREATE TABLE router_history (
    endpoint text COLLATE "C" NOT NULL REFERENCES router_endpoints ON DELETE CASCADE,
    seq      bigint GENERATED ALWAYS AS IDENTITY,
    revision json NOT NULL,
    PRIMARY KEY (endpoint, seq)
);
