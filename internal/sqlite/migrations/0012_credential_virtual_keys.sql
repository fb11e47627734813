-- Issue 19: the credential a route forwards in place of virtual keys is
-- marked as such when noted, so reconcile --by key maps key:NAME calls to
-- the provider's key without the gateway's credential in its environment.
ALTER TABLE credentials ADD COLUMN virtual_keys INTEGER NOT NULL DEFAULT 0;
