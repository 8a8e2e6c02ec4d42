-- Server-side key generation (RFC 7030 section 4.4) is a per-contract option, off by
-- default: contracts created before it existed keep their IDs' keys on their own PCs.
ALTER TABLE contracts ADD COLUMN server_keygen boolean NOT NULL DEFAULT false;
