-- The Regression rule's memory (guard/regression.py): each patch's CUSUM beside its pending
-- rules, and how far the 5-second buckets have been folded into the CUSUMs. Both are written in
-- the guard cycle's transaction, so a restart or an outage neither loses nor double-counts a bucket.

-- S, the applications and failures folded in since S last stood at zero (the current rise), and
-- whether S crossed h since then (the rule fires until S is back at zero).
ALTER TABLE sdk_guard_state
    ADD COLUMN regression_cusum    double precision NOT NULL DEFAULT 0 CHECK (regression_cusum >= 0),
    ADD COLUMN regression_total    bigint NOT NULL DEFAULT 0,
    ADD COLUMN regression_failures bigint NOT NULL DEFAULT 0,
    ADD COLUMN regression_alarm    boolean NOT NULL DEFAULT false;

-- One row: 5-second buckets starting before `folded_until` are in the CUSUMs (one watermark for
-- all patches: each cycle reads exactly the buckets completed since, whatever the patch).
CREATE TABLE sdk_guard_watermark (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    folded_until timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON sdk_guard_watermark TO selfheal_operator;

-- A patch brought back starts afresh, its CUSUM included (same trigger as 0003, one more reset).
CREATE OR REPLACE FUNCTION selfheal_guard_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sdk_guard_state AS g (patch_id, since, pending, verdict)
    VALUES (NEW.id, now(), '{}'::jsonb, NULL)
    ON CONFLICT (patch_id) DO UPDATE SET since = now(), pending = '{}'::jsonb, verdict = NULL,
        regression_cusum = 0, regression_total = 0, regression_failures = 0, regression_alarm = false,
        updated_at = now();
    RETURN NULL;
END
$$;
