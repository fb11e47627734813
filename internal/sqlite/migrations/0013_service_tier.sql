-- Issue 13: the provider's service tier that served a call (OpenAI's
-- service_tier: flex, priority, ...), which its cost was priced at.
ALTER TABLE events ADD COLUMN service_tier TEXT NOT NULL DEFAULT '';
