-- What a laptop reports about itself at enrolment and sync (devices, issue
-- 13): its name, site, staff initials and records waiting to be sent.
-- Empty for devices that never reported (older laptops).
ALTER TABLE devices ADD COLUMN name TEXT;
ALTER TABLE devices ADD COLUMN site TEXT;
ALTER TABLE devices ADD COLUMN staff TEXT;
ALTER TABLE devices ADD COLUMN waiting BIGINT;
