-- One durable debit, atomically (Redis runs a script to completion before anything else).
-- KEYS[1] the account's balance, KEYS[2] the idempotency key; ARGV[1] the amount (minor units).
-- Returns the balance after the debit; a replayed key returns the answer stored the first time;
-- an unknown account or a balance below the amount is an error and changes nothing.
local prior = redis.call('GET', KEYS[2])
if prior then return tonumber(prior) end
local amount = tonumber(ARGV[1])
if not amount or amount < 1 then return redis.error_reply('INVALID_ARGUMENT amount') end
local balance = tonumber(redis.call('GET', KEYS[1]))
if not balance then return redis.error_reply('NOT_FOUND account') end
if balance < amount then return redis.error_reply('INSUFFICIENT_FUNDS') end
local after = redis.call('DECRBY', KEYS[1], amount)
redis.call('SET', KEYS[2], after, 'NX', 'EX', 86400)
return after
