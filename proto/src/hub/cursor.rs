//! Pull cursors signed by the hub.
//!
//! A laptop's pull cursor is a feed position. A position beyond the end of
//! the feed is the hub's only automatic evidence that it was restored from
//! a backup, and it answers that by giving the organisation's feed a new
//! epoch: every laptop of the org then sends everything again and re-reads
//! the feed. If any device could claim such a position, one device could
//! make the whole org do that at will. So the hub signs every cursor it
//! hands out (HMAC-SHA-256 over org, epoch and position, with a secret only
//! the hub holds), and a cursor beyond the feed counts as evidence only when
//! the signature checks: only a position this hub itself issued, in the
//! epoch still current, can set off a new epoch, and only once.
//!
//! The key is passed in (the hub keeps it in its database, so a restored
//! backup still verifies the cursors issued before it was taken).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The hub's secret for signing cursors.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    pub fn new(secret: [u8; 32]) -> CursorKey {
        CursorKey(secret)
    }

    fn mac(&self, org: &str, epoch: u64, position: u64) -> Hmac<Sha256> {
        // `new_from_slice` accepts a key of any length for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        // Length-prefixed, so (org, epoch, position) cannot be confused
        // with another org whose slug shares a prefix.
        mac.update(b"outpost pull cursor v1\0");
        mac.update(&(org.len() as u64).to_be_bytes());
        mac.update(org.as_bytes());
        mac.update(&epoch.to_be_bytes());
        mac.update(&position.to_be_bytes());
        mac
    }

    /// The signature of `position` in `org`'s feed of `epoch`.
    pub fn sign(&self, org: &str, epoch: u64, position: u64) -> Vec<u8> {
        self.mac(org, epoch, position)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `sig` is this hub's signature of the cursor (compared in
    /// constant time).
    pub fn verify(&self, org: &str, epoch: u64, position: u64, sig: &[u8]) -> bool {
        self.mac(org, epoch, position).verify_slice(sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_binds_org_epoch_and_position() {
        let key = CursorKey::new([7; 32]);
        let sig = key.sign("mjolby", 5, 100);
        assert!(key.verify("mjolby", 5, 100, &sig));
        assert!(!key.verify("mjolby", 5, 101, &sig));
        assert!(!key.verify("mjolby", 6, 100, &sig));
        assert!(!key.verify("linkoping", 5, 100, &sig));
        assert!(!key.verify("mjolby", 5, 100, &[]));
        assert!(!CursorKey::new([8; 32]).verify("mjolby", 5, 100, &sig));
    }
}
