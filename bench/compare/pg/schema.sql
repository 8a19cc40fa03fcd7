-- The wallet a team would build in PostgreSQL: one row per account, and a ledger whose UNIQUE
-- idempotency key makes a retried debit fail instead of debiting twice. psql -v naccounts=N.
-- No foreign key from ledger to accounts: it would only add a key-share lock per debit, and the
-- comparison gives PostgreSQL its cheapest correct form.
DROP TABLE IF EXISTS ledger;
DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (
  id      bigint PRIMARY KEY,
  balance bigint NOT NULL,
  version bigint NOT NULL DEFAULT 0
);
CREATE TABLE ledger (
  id              bigserial PRIMARY KEY,
  account_id      bigint NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  idempotency_key text NOT NULL UNIQUE,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- 10^15 minor units each: no debit of a benchmark runs out of funds.
INSERT INTO accounts (id, balance) SELECT g, 1000000000000000 FROM generate_series(1, :naccounts) g;
VACUUM ANALYZE accounts;
