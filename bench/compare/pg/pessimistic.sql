-- pgbench: one durable debit, pessimistic. The row lock taken by FOR UPDATE serialises debits of
-- one account from the read of its balance to the fsync of the COMMIT.
-- Variables (-D): naccounts, point (run number), seq=0 (pgbench keeps it per client across runs
-- of the script, so point-client-seq is a unique idempotency key).
\set id random(1, :naccounts)
\set amount random(1, 100)
\set seq :seq + 1
BEGIN;
SELECT balance FROM accounts WHERE id = :id FOR UPDATE \gset
\if :balance >= :amount
UPDATE accounts SET balance = balance - :amount WHERE id = :id;
INSERT INTO ledger (account_id, amount, idempotency_key)
  VALUES (:id, :amount, 'p-' || :point || '-' || :client_id || '-' || :seq);
COMMIT;
\else
ROLLBACK;
\endif
