-- Registry API: hashed API tokens, and a registry-wide sequence number that SDKs use to refuse
-- replayed (older) patches.

CREATE TABLE selfheal_api_tokens (
    id           text PRIMARY KEY,
    token_sha256 text NOT NULL UNIQUE,
    developer_id text NOT NULL CHECK (length(developer_id) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('developer', 'dev_admin')),
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE SEQUENCE selfheal_registry_sequence;
ALTER TABLE sdk_self_healing_registry ADD COLUMN sequence bigint NOT NULL DEFAULT nextval('selfheal_registry_sequence');

CREATE FUNCTION selfheal_registry_sequence_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(NEW.*) IS DISTINCT FROM ROW(OLD.*) THEN
        NEW.sequence := nextval('selfheal_registry_sequence');
    END IF;
    RETURN NEW;
END
$$;

-- Named to run after registry_before (triggers fire in name order), once the row is final.
CREATE TRIGGER registry_sequence BEFORE UPDATE ON sdk_self_healing_registry
    FOR EACH ROW EXECUTE FUNCTION selfheal_registry_sequence_bump();
