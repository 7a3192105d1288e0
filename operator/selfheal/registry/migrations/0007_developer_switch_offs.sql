-- Patches the guard switched off for one developer only (issue 14): one token's evidence may
-- switch a patch off for that token, not for everyone (core/guard/evidence.py has the rule).
-- The registry API does not serve a patch to a developer listed here; `selfheal enable`, a new
-- version, or anything that brings the patch back clears its rows.
CREATE TABLE sdk_patch_developer_switch_offs (
    patch_id     text NOT NULL REFERENCES sdk_self_healing_registry (id) ON DELETE CASCADE,
    developer_id text NOT NULL,
    rule         text NOT NULL,
    message      text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patch_id, developer_id)
);

-- The API's catalog reloads a patch on the same notification as a registry change.
CREATE FUNCTION selfheal_switch_offs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('selfheal_registry', coalesce(NEW.patch_id, OLD.patch_id));
    RETURN NULL;
END
$$;
CREATE TRIGGER developer_switch_offs_notify AFTER INSERT OR DELETE ON sdk_patch_developer_switch_offs
    FOR EACH ROW EXECUTE FUNCTION selfheal_switch_offs_notify();

-- A new version or a reactivation starts afresh: the switch-offs judged the old evidence.
CREATE FUNCTION selfheal_switch_offs_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sdk_patch_developer_switch_offs WHERE patch_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER registry_switch_offs_reset AFTER UPDATE ON sdk_self_healing_registry
    FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version OR (NEW.active AND NOT OLD.active))
    EXECUTE FUNCTION selfheal_switch_offs_reset();

GRANT SELECT, INSERT, DELETE ON sdk_patch_developer_switch_offs TO selfheal_operator;
GRANT SELECT ON sdk_patch_developer_switch_offs TO selfheal_api;
