-- The provider's service tier that served a call (OpenAI's service_tier:
-- flex, priority, ...), which its cost was priced at (issue 13).
ALTER TABLE events ADD COLUMN service_tier TEXT NOT NULL DEFAULT '';
