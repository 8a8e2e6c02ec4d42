-- The CA this database belongs to (src/store/ca_binding.rs): the SHA-256 fingerprint of a
-- key of that CA, recorded by the first daemon that starts on the database and checked by
-- every other, so that a daemon with another CA directory cannot join. One row at most.
CREATE TABLE ca_binding (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_sha256 bytea NOT NULL CHECK (octet_length(key_sha256) = 32)
);
