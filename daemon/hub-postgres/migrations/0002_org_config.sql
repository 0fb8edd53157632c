-- Each organisation's central configuration (service catalogue, site
-- list; `outpost_proto::central`): one blob per kind, versioned by one
-- counter per organisation so two changes never share a version.
CREATE TABLE org_config (
    org     TEXT NOT NULL REFERENCES orgs(slug),
    kind    TEXT NOT NULL,
    version BIGINT NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (org, kind)
);
