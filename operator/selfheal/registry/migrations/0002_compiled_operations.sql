-- Compiled operations beside the code: what SDKs receive and apply from a fixed table.
-- Each is the operation document of selfheal.patchlang ({"format": "selfheal.operations",
-- "version": 1, "operations": [...]}). jsonb keeps its values exactly (strings, integers below
-- 2^53, booleans, null), so its canonical bytes (patchlang.canonical_json, RFC 8785 for this
-- value domain) are recomputed identically from what is stored; signatures cover those bytes.

ALTER TABLE sdk_self_healing_registry
    ADD COLUMN operations jsonb CHECK (jsonb_typeof(operations) = 'object'),
    ADD COLUMN rollback_operations jsonb CHECK (jsonb_typeof(rollback_operations) = 'object');

ALTER TABLE sdk_patch_versions
    ADD COLUMN operations jsonb,
    ADD COLUMN rollback_operations jsonb;

-- Only the compiler writes operations. A hand-written INSERT cannot bring its own, and code
-- changed by hand drops them until the operator has compiled the new code (the row is pending).
CREATE FUNCTION selfheal_operations_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF selfheal_actor() = 'operator' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.operations := NULL;
        NEW.rollback_operations := NULL;
    ELSIF (NEW.sdk_language, NEW.patch_code, NEW.rollback_code) IS DISTINCT FROM
          (OLD.sdk_language, OLD.patch_code, OLD.rollback_code) THEN
        NEW.operations := NULL;
        NEW.rollback_operations := NULL;
    ELSE
        NEW.operations := OLD.operations;
        NEW.rollback_operations := OLD.rollback_operations;
    END IF;
    RETURN NEW;
END
$$;

-- The version history holds what each revision compiled to, including operations stored later
-- by the registry watch for rows written by SQL.
CREATE FUNCTION selfheal_operations_after() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.revision <> OLD.revision
       OR (NEW.operations, NEW.rollback_operations) IS DISTINCT FROM (OLD.operations, OLD.rollback_operations) THEN
        UPDATE sdk_patch_versions SET operations = NEW.operations, rollback_operations = NEW.rollback_operations
        WHERE patch_id = NEW.id AND revision = NEW.revision;
    END IF;
    RETURN NULL;
END
$$;

-- Trigger names order them: after registry_before (which sets validation_state) and, for the
-- history copy, after registry_after (which inserts the version row).
CREATE TRIGGER registry_operations_before BEFORE INSERT OR UPDATE ON sdk_self_healing_registry
    FOR EACH ROW EXECUTE FUNCTION selfheal_operations_before();
CREATE TRIGGER registry_operations_after AFTER INSERT OR UPDATE ON sdk_self_healing_registry
    FOR EACH ROW EXECUTE FUNCTION selfheal_operations_after();

-- Rows from before this migration are compiled once by the operator's registry watch.
UPDATE sdk_self_healing_registry SET validation_state = 'pending', validation_message = NULL
WHERE validation_state = 'valid' AND operations IS NULL;
