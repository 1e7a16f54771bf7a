-- What the replicas of a fleet must agree on and no store owns: the key that
-- hashes PII fields in the inference tables, made by the first replica that
-- needs it when inference_tables.pii_key is not configured, so that a PII
-- value hashes alike in every replica's rows.
CREATE TABLE fleet_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
