-- Least privilege: the operator and the registry API connect as their own roles, with only the
-- grants each needs; migrations run as the role that owns the schema (whoever runs this file).
-- History (sdk_patch_versions), audit (sdk_patch_audit) and the application log
-- (sdk_patch_applications) are append-only for both: no UPDATE or DELETE is granted on them.
--
-- selfheal_operator and selfheal_api are group roles (NOLOGIN): give a login role membership
-- (`CREATE ROLE op LOGIN PASSWORD '…' IN ROLE selfheal_operator`) or `ALTER ROLE … LOGIN`.
-- They are created here when missing, which needs CREATEROLE; a DBA may create them beforehand.

-- One block per role: roles are cluster-wide, and another database's migration may create one
-- at the same moment (the loser sees a unique violation, which is fine). Checked first: a
-- migrating role without CREATEROLE works once a DBA has created them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'selfheal_operator') THEN
        CREATE ROLE selfheal_operator NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'selfheal_api') THEN
        CREATE ROLE selfheal_api NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- Work the restricted roles must not be granted directly runs in the owner's name, in a few
-- fixed functions (search_path pinned, as every SECURITY DEFINER function must):
--  - rollups are kept by the database, so the API (which inserts applications) cannot write them;
--  - compiled operations are copied into history rows, which stay closed to UPDATE otherwise;
--  - daily partitions are created and dropped by the operator's maintenance (DDL needs the owner).
DO $$
DECLARE
    fn text;
BEGIN
    FOREACH fn IN ARRAY ARRAY['selfheal_rollup_applications()', 'selfheal_operations_after()',
                              'selfheal_ensure_application_partitions(date, date)',
                              'selfheal_drop_application_partitions(date)'] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', fn, current_schema());
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION selfheal_ensure_application_partitions(date, date),
                          selfheal_drop_application_partitions(date) TO selfheal_operator;

-- The operator: syncs SelfHealPatch resources into the registry, validates rows written by SQL,
-- runs the guard (reads rollups, keeps its state, deactivates) and prunes old rollups.
GRANT SELECT, INSERT, UPDATE ON sdk_self_healing_registry TO selfheal_operator;
GRANT SELECT, INSERT ON sdk_patch_versions, sdk_patch_audit TO selfheal_operator;
GRANT SELECT ON sdk_patch_applications TO selfheal_operator;
GRANT SELECT, DELETE ON sdk_patch_rollups TO selfheal_operator;
GRANT SELECT, INSERT, UPDATE ON sdk_guard_state TO selfheal_operator;
GRANT USAGE ON SEQUENCE selfheal_registry_sequence TO selfheal_operator;

-- The registry API: serves active patches, checks tokens, records outcomes (COPY), and the
-- incident kill switch, which may only switch a patch off (three columns) with its audit row.
GRANT SELECT ON sdk_self_healing_registry TO selfheal_api;
GRANT UPDATE (active, deactivation_reason, deactivation_message) ON sdk_self_healing_registry TO selfheal_api;
GRANT INSERT ON sdk_patch_audit TO selfheal_api;
GRANT INSERT ON sdk_patch_applications TO selfheal_api;
GRANT SELECT, INSERT, UPDATE ON sdk_guard_state TO selfheal_api;
GRANT SELECT ON selfheal_api_tokens TO selfheal_api;
GRANT USAGE ON SEQUENCE selfheal_registry_sequence TO selfheal_api;
