-- Renewal with the same key (RFC 7030 section 4.2.2): an ID's new certificate may certify the
-- key of the certificate it supersedes. Keys stay unique across IDs and certificates
-- otherwise, now in a table of their own that keeps the first certificate of each key (as
-- the embedded backends' key index does), instead of a unique column of certificates.
CREATE TABLE certified_keys (
    key_fingerprint bytea PRIMARY KEY CHECK (length(key_fingerprint) = 32),
    first_serial bytea NOT NULL CHECK (length(first_serial) = 16)
);
INSERT INTO certified_keys (key_fingerprint, first_serial)
    SELECT key_fingerprint, serial FROM certificates;
ALTER TABLE certificates DROP CONSTRAINT certificates_key_fingerprint_key;
CREATE INDEX certificates_by_key ON certificates (key_fingerprint);
