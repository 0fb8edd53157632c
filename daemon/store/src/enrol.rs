//! Enrolling this laptop with a hub (`outpost enroll`).
//!
//! The laptop sends its own organisation with the code, so a code of
//! another org is refused by the hub and binds nothing. A laptop that was
//! enrolled before (its token revoked, or moving to another hub) enrols
//! under a **new device id**: the hub never re-activates a revoked device,
//! and the new identity has a token of its own. Records are untouched:
//! those not yet synced stay pending and are sent at the next sync.

use outpost_proto::sync::{EnrollRequest, EnrollResponse, PROTOCOL_VERSION};
use uuid::Uuid;

use crate::client::{ClientError, HubClient};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Hub(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An older hub that ignores the laptop's org answered with another.
    #[error(
        "this code enrols laptops of organisation '{code_org}', but this laptop was set up for '{own}'; ask for a code for '{own}'"
    )]
    OtherOrg { code_org: String, own: String },
}

/// Enrols `store`'s laptop with the hub behind `client` using `code`, and
/// keeps the device id and token (one transaction). Returns the hub's
/// answer.
pub fn enroll(
    store: &mut Store,
    client: &HubClient,
    code: &str,
    device_time: i64,
) -> Result<(Uuid, EnrollResponse), EnrolError> {
    let own_org = store.identity().org.clone();
    let current = Uuid::parse_str(&store.identity().device).ok();
    // Enrolled before (a token is kept) or an unreadable id: a new id.
    let mut device = match (store.hub_token()?, current) {
        (None, Some(id)) => id,
        _ => Uuid::new_v4(),
    };
    let request = |device: Uuid| EnrollRequest {
        v: PROTOCOL_VERSION,
        code: code.to_string(),
        device,
        device_time,
        org: Some(own_org.clone()),
    };
    let resp = match client.enroll(&request(device)) {
        // This id is known to the hub already (an earlier enrolment whose
        // answer was lost, or a restored laptop): enrol as a new device.
        Err(ClientError::Refused { status: 409, .. }) => {
            device = Uuid::new_v4();
            client.enroll(&request(device))?
        }
        other => other?,
    };
    if resp.org != own_org {
        return Err(EnrolError::OtherOrg {
            code_org: resp.org,
            own: own_org,
        });
    }
    store.set_enrolment(&device.to_string(), &resp.token)?;
    Ok((device, resp))
}
