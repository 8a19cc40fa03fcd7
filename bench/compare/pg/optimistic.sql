-- pgbench: one durable debit, optimistic: no explicit lock, the balance is checked by the UPDATE
-- itself (and the version bumped for readers that compare it), and the ledger row is inserted only
-- if the debit happened. One statement, so one round trip and one transaction: PostgreSQL's
-- cheapest correct form. A repeated idempotency key fails the statement and undoes the debit.
-- Variables (-D): naccounts, point, seq=0 (see pessimistic.sql).
\set id random(1, :naccounts)
\set amount random(1, 100)
\set seq :seq + 1
WITH debited AS (
  UPDATE accounts SET balance = balance - :amount, version = version + 1
   WHERE id = :id AND balance >= :amount
  RETURNING id)
INSERT INTO ledger (account_id, amount, idempotency_key)
  SELECT id, :amount, 'o-' || :point || '-' || :client_id || '-' || :seq FROM debited;
