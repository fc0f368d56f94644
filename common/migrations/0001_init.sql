-- 0001: the first migration. rampart_meta holds exactly one row that identifies this
-- installation (logs, backups and metrics use it to tell installations apart) and says when
-- it was created. The real schema arrives in later migrations; never edit this file once
-- applied anywhere: add 0002_... instead (the runner refuses changed files).
CREATE TABLE rampart_meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    installation_id uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO rampart_meta DEFAULT VALUES;
