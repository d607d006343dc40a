-- Across trust domains (SPEC §9).
--
-- What a record says of grants for another trust domain, beside the kind of token asked for:
-- `grant_type`, the grant type of the request when it is not token exchange (`jwt-bearer`),
-- and `grant_kind`, the kind of grant issued (by token exchange) or presented (with
-- `jwt-bearer`): `authorization_grant` or `id_jag`. Both are null on every other record, which
-- keeps having no row here unless it is of another kind of token.
ALTER TABLE exchange_kinds ADD COLUMN grant_type TEXT;
ALTER TABLE exchange_kinds ADD COLUMN grant_kind TEXT;
