//! The hub storage conformance suite on the in-memory backend.

use outpost_proto::hub::mem::MemStorage;

outpost_proto::hub_storage_conformance!(|orgs: &[&str]| MemStorage::with_orgs(orgs));
