DROP TABLE revocations;
DROP INDEX exchanges_by_actor;
DROP INDEX exchanges_by_actor_jti;
ALTER TABLE exchanges DROP COLUMN actor_jti;
