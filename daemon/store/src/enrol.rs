//! Enrolling this laptop with a hub (`outpost enroll`).
//!
//! The laptop sends its own organisation with the code, so a code of
//! another org is refused by the hub and binds nothing. A laptop that was
//! enrolled before (its token revoked, or moving to another hub) enrols
//! under a **new device id**: the hub never re-activates a revoked device,
//! and the new identity has a token of its own. Records are untouched:
//! those not yet synced stay pending and are sent at the next sync.
//!
//! The laptop names itself at enrolment (`--name`, else its site and a
//! short id): the name is checked here first (bounded, privacy screen) so
//! a refused one never leaves the laptop, and again by the hub, which
//! refuses the enrolment and binds nothing. A name given is kept in the
//! store only once the hub accepted it.

use outpost_proto::device::{self, DeviceReport};
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
    /// The name given was refused here, before anything was sent.
    #[error(transparent)]
    Name(#[from] device::DeviceError),
    /// An older hub that ignores the laptop's org answered with another.
    #[error(
        "this code enrols laptops of organisation '{code_org}', but this laptop was set up for '{own}'; ask for a code for '{own}'"
    )]
    OtherOrg { code_org: String, own: String },
}

/// Enrols `store`'s laptop with the hub behind `client` using `code`, and
/// keeps the device id and token (one transaction), and `name` when given
/// (else the name given before, else the default). Returns the hub's
/// answer.
pub fn enroll(
    store: &mut Store,
    client: &HubClient,
    code: &str,
    name: Option<&str>,
    device_time: i64,
) -> Result<(Uuid, EnrollResponse), EnrolError> {
    let name = name.map(device::check_name).transpose()?;
    let given = match &name {
        Some(n) => Some(n.clone()),
        None => store.given_device_name()?,
    };
    let own_org = store.identity().org.clone();
    let current = Uuid::parse_str(&store.identity().device).ok();
    // Enrolled before (a token is kept) or an unreadable id: a new id.
    let mut device = match (store.hub_token()?, current) {
        (None, Some(id)) => id,
        _ => Uuid::new_v4(),
    };
    let base = store.device_report()?;
    let request = |device: Uuid| EnrollRequest {
        v: PROTOCOL_VERSION,
        code: code.to_string(),
        device,
        device_time,
        org: Some(own_org.clone()),
        // The default name carries the id this request enrols.
        report: Some(DeviceReport {
            name: given
                .clone()
                .unwrap_or_else(|| device::default_name(&base.site, &device.to_string())),
            ..base.clone()
        }),
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
    if let Some(name) = &name {
        store.set_device_name(Some(name))?;
    }
    Ok((device, resp))
}
