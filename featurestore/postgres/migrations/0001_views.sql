-- The feature views' definitions; their online values stay in the online
-- stores (Redis, Cassandra).

-- One row per view: the featurestore.View as the JSON the gateway wrote
-- (json, not jsonb, so that it comes back byte for byte, its keys in their
-- order). The name sorts bytewise ("C").
CREATE TABLE featurestore_views (
    name text COLLATE "C" PRIMARY KEY,
    view json NOT NULL
);
