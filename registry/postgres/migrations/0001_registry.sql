-- The registry's records, its audit trail and its model files.

-- One row per model: the registry.Model as the JSON the registry wrote (json,
-- not jsonb, so that feature specs and baselines come back byte for byte).
-- The name sorts bytewise ("C"), as Models lists them. model is NULL only
-- inside the transaction that creates the row.
CREATE TABLE registry_models (
    name  text COLLATE "C" PRIMARY KEY,
    model json
);

-- The audit trail. event is the registry.AuditEvent without its seq, exactly
-- as written (its time to the nanosecond); the other columns repeat what
-- queries select on, NULL where the event has none.
CREATE TABLE registry_audit (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time     timestamptz NOT NULL,
    actor    text NOT NULL,
    action   text NOT NULL,
    model    text,
    endpoint text,
    view     text,
    event    json NOT NULL
);
CREATE INDEX registry_audit_model ON registry_audit (model, seq) WHERE model IS NOT NULL;
CREATE INDEX registry_audit_endpoint ON registry_audit (endpoint, seq) WHERE endpoint IS NOT NULL;
CREATE INDEX registry_audit_view ON registry_audit (view, seq) WHERE view IS NOT NULL;

-- Model files, content-addressed: each distinct file once, in chunks, under
-- its sha256; artifact keys point at it.
CREATE TABLE registry_blobs (
    sha256 text PRIMARY KEY,
    size   bigint NOT NULL
);
CREATE TABLE registry_blob_chunks (
    sha256 text NOT NULL REFERENCES registry_blobs ON DELETE CASCADE,
    n      integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (sha256, n)
);
CREATE TABLE registry_artifacts (
    key    text PRIMARY KEY,
    sha256 text NOT NULL REFERENCES registry_blobs
);
CREATE INDEX registry_artifacts_sha256 ON registry_artifacts (sha256);
