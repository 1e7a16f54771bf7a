-- The drift monitors' specs.

-- One row per monitor: the drift.MonitorSpec as the JSON drift wrote (json,
-- not jsonb, so that a spec comes back byte for byte, its keys in their
-- order). The name sorts bytewise ("C").
CREATE TABLE drift_monitors (
    name text COLLATE "C" PRIMARY KEY,
    spec json NOT NULL
);
