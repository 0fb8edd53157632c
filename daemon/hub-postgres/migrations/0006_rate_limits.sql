-- Rate-limit counters shared by every hub node (issue 14: nothing
-- node-local that matters): a device's documents and erasures of the day,
-- wrong enrolment codes per address and minute. The limits are decided in
-- outpost_proto::hub::limits; a row is one counter `key` in its fixed
-- window `period`, which ends at `expires` (Unix seconds) and may be
-- deleted after. Shipped: never edit this file.

CREATE TABLE rate_counts (
    key     TEXT NOT NULL,
    period  BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    used    BIGINT NOT NULL,
    PRIMARY KEY (key, period)
);
CREATE INDEX rate_counts_expires ON rate_counts (expires);
