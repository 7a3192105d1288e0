-- The Regression rule watches a grid of ratios with a bank of CUSUMs (guard/cusum.py, `fold_bank`):
-- each one's S, in the grid's order. regression_cusum keeps the highest of them, so that
-- regression_cusum = 0 still means "all at rest" wherever it is reset or tested (the reset trigger,
-- a deactivation, the quiet patches' SQL): a bank read beside a zero regression_cusum is ignored.
ALTER TABLE sdk_guard_state
    ADD COLUMN regression_bank double precision[] NOT NULL DEFAULT '{}';
