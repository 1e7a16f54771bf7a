-- The fleet's drift windows and the leader's judgements of them.

-- One row per replica, monitor, window and model version compared with: the
-- replica's latest drift.WindowSnapshot of the window, replaced as it
-- publishes. judged is set when the window's report is claimed, so that the
-- leader's search for windows to judge reads only the others. Rows of
-- windows that ended a day ago are pruned.
CREATE TABLE drift_windows (
    monitor text COLLATE "C" NOT NULL,
    window_start timestamptz NOT NULL,
    replica text COLLATE "C" NOT NULL,
    model_uuid text COLLATE "C" NOT NULL,
    window_end timestamptz NOT NULL,
    snapshot jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    judged boolean NOT NULL DEFAULT false,
    PRIMARY KEY (monitor, window_start, replica, model_uuid)
);
CREATE INDEX drift_windows_end ON drift_windows (window_end);
CREATE INDEX drift_windows_unjudged ON drift_windows (window_end) WHERE NOT judged;

-- One row per judged window: the drift.WindowReport, and the alert it raised
-- (null when none) with its delivery id, pending until delivered_at is set.
-- The primary key makes the judgement of a window a claim that only one
-- replica wins.
CREATE TABLE drift_reports (
    monitor text COLLATE "C" NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    report jsonb NOT NULL,
    alert_id text COLLATE "C" UNIQUE,
    alert jsonb,
    delivered_at timestamptz,
    PRIMARY KEY (monitor, window_start),
    CHECK ((alert_id IS NULL) = (alert IS NULL))
);
CREATE INDEX drift_reports_alerts ON drift_reports (monitor, window_end) WHERE alert IS NOT NULL;
CREATE INDEX drift_reports_pending ON drift_reports (window_start) WHERE alert IS NOT NULL AND delivered_at IS NULL;
