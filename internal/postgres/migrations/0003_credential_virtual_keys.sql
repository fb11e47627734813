-- A credential the gateway sent in place of virtual keys (the route's own),
-- so reconcile --by key maps them without the provider key (issue 19).
ALTER TABLE credentials ADD COLUMN virtual_keys BOOLEAN NOT NULL DEFAULT FALSE;
