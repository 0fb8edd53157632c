//! The conformance suite every [`HubStore`] backend passes (accounts and
//! the admin projection; the sync primitives have their own suite,
//! `outpost_proto::hub_storage_conformance!`). Behind the `test-support`
//! feature.
//!
//! A backend's test file runs it with one line, giving a function that
//! makes a fresh, empty store (anything that dereferences to one, so a
//! guard can clean up after the test):
//!
//! ```ignore
//! outpost_hub_db::hub_store_conformance!(|| my_backend());
//! ```

use std::ops::Deref;

use chrono::{TimeDelta, TimeZone, Utc};
use outpost_proto::filter::Filter;
use outpost_proto::fixtures;
use outpost_proto::hub::{Expect, HubStorage, Put};
use outpost_proto::record::{Kind, Record};
use outpost_proto::sync::Heads;
use serde_json::json;
use uuid::Uuid;

use crate::{CODE_TTL, HubError, HubStore};

/// Runs every check as its own `#[test]` against the store `$make`
/// returns (a closure `Fn() -> S`, `S: Deref<Target: HubStore>`).
#[macro_export]
macro_rules! hub_store_conformance {
    ($make:expr) => {
        $crate::hub_store_conformance!(@tests $make;
            organisations_are_added_once_and_listed_in_order,
            admin_tokens_are_checked_and_scoped,
            an_enrolment_code_binds_one_device_of_its_own_org_until_it_expires,
            a_revoked_device_is_refused_and_stays_listed,
            devices_record_when_they_were_seen_and_their_clock,
            the_cursor_key_is_made_once_and_kept,
            the_projection_follows_puts_and_erasures_and_filters,
            // ---- dashboard: sign-in codes and sessions (dash) ----
            a_signin_code_makes_one_session_with_its_tokens_view_until_it_expires,
            a_session_ends_when_idle_when_old_and_when_signed_out
        );
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name($make);
            }
        )*
    };
}

const A: &str = "mjolby";
const B: &str = "boxholm";

fn when() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn organisations_are_added_once_and_listed_in_order<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    assert_eq!(hub.orgs().unwrap(), vec![]);
    hub.add_org(A, "Mjölby kommun").unwrap();
    hub.add_org(B, "  Boxholms kommun ").unwrap();
    assert!(matches!(
        hub.add_org(A, "Again"),
        Err(HubError::OrgExists(o)) if o == A
    ));
    assert!(matches!(
        hub.add_org("Not A Slug", "x"),
        Err(HubError::Invalid(_))
    ));
    assert!(matches!(hub.add_org("ok", "  "), Err(HubError::Invalid(_))));
    assert_eq!(
        hub.orgs().unwrap(),
        vec![
            (B.to_string(), "Boxholms kommun".to_string()),
            (A.to_string(), "Mjölby kommun".to_string()),
        ],
        "sorted by slug, names trimmed, the first name kept"
    );
}

pub fn admin_tokens_are_checked_and_scoped<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    assert!(!hub.has_admin_token().unwrap());
    let all = hub.create_admin_token(None).unwrap();
    assert!(hub.has_admin_token().unwrap());
    hub.add_org(A, "Mjölby kommun").unwrap();
    let scoped = hub.create_admin_token(Some(A)).unwrap();
    assert_ne!(all, scoped);
    assert!(all.starts_with("opa_"));
    let admin = hub.admin(&all).unwrap();
    assert_eq!(admin.org, None);
    assert!(admin.check(B).is_ok());
    // Surrounding whitespace (a token file's newline) does not matter.
    let coordinator = hub.admin(&format!("{scoped}\n")).unwrap();
    assert_eq!(coordinator.org.as_deref(), Some(A));
    assert!(coordinator.check(A).is_ok());
    assert!(matches!(coordinator.check(B), Err(HubError::Forbidden(o)) if o == B));
    assert!(matches!(
        hub.admin("opa_wrong"),
        Err(HubError::Unauthorized)
    ));
    assert!(matches!(hub.admin(""), Err(HubError::Unauthorized)));
}

pub fn an_enrolment_code_binds_one_device_of_its_own_org_until_it_expires<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    hub.add_org(B, "Boxholms kommun").unwrap();
    let now = when();
    assert!(matches!(hub.invite("nope", now), Err(HubError::NoSuchOrg(o)) if o == "nope"));
    let code = hub.invite(A, now).unwrap();
    assert_eq!(crate::normalize_code(&code), code);

    // Expired: refused, nothing bound.
    let late = now + CODE_TTL + TimeDelta::minutes(1);
    let first = Uuid::new_v4();
    assert!(matches!(
        hub.enroll(&code, first, None, late),
        Err(HubError::BadCode)
    ));
    // Another org's laptop: refused, nothing bound, the code still usable.
    assert!(matches!(
        hub.enroll(&code, first, Some(B), now),
        Err(HubError::CodeForOtherOrg(o)) if o == B
    ));
    assert_eq!(hub.device_org(&first.to_string()).unwrap(), None);
    assert!(matches!(
        hub.enroll("AAAA-BBBB-CCCC-DDDD", first, None, now),
        Err(HubError::BadCode)
    ));

    // As a person types it: lower case, no dashes.
    let typed = code.to_lowercase().replace('-', "");
    let (org, token) = hub.enroll(&typed, first, Some(A), now).unwrap();
    assert_eq!(org, A);
    assert!(token.starts_with("opd_"));
    let who = hub.device(&token).unwrap();
    assert_eq!(
        (who.device.as_str(), who.org.as_str()),
        (first.to_string().as_str(), A)
    );
    assert_eq!(
        hub.device_org(&first.to_string()).unwrap().as_deref(),
        Some(A)
    );
    assert!(matches!(
        hub.device("opd_wrong"),
        Err(HubError::Unauthorized)
    ));

    // Used once: refused for anyone after.
    assert!(matches!(
        hub.enroll(&code, Uuid::new_v4(), None, now),
        Err(HubError::BadCode)
    ));
    // A device id already enrolled is refused, and the code is not spent.
    let again = hub.invite(A, now).unwrap();
    assert!(matches!(
        hub.enroll(&again, first, None, now),
        Err(HubError::DeviceExists(d)) if d == first
    ));
    let second = Uuid::new_v4();
    hub.enroll(&again, second, None, now + TimeDelta::minutes(1))
        .unwrap();

    // Still valid one second before it expires.
    let edge = hub.invite(B, now).unwrap();
    hub.enroll(
        &edge,
        Uuid::new_v4(),
        None,
        now + CODE_TTL - TimeDelta::seconds(1),
    )
    .unwrap();

    let listed: Vec<(String, String)> = hub
        .devices(None)
        .unwrap()
        .into_iter()
        .map(|d| (d.org, d.id))
        .collect();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].0, B, "by org, then by enrolment");
    assert_eq!(
        hub.devices(Some(A))
            .unwrap()
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>(),
        vec![first.to_string(), second.to_string()]
    );
}

/// A new device of `org`, enrolled `minute` minutes after [`when`] (so
/// the listing order is defined): (id, token).
fn enrolled<H: HubStore + ?Sized>(hub: &H, org: &str, minute: i64) -> (String, String) {
    let at = when() + TimeDelta::minutes(minute);
    let code = hub.invite(org, at).unwrap();
    let device = Uuid::new_v4();
    let (_, token) = hub.enroll(&code, device, None, at).unwrap();
    (device.to_string(), token)
}

pub fn a_revoked_device_is_refused_and_stays_listed<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    let (kept, kept_token) = enrolled(&*hub, A, 0);
    let (gone, gone_token) = enrolled(&*hub, A, 1);
    hub.revoke(&gone, when()).unwrap();
    hub.revoke(&gone, when() + TimeDelta::hours(1))
        .expect("revoking again changes nothing");
    assert!(matches!(
        hub.device(&gone_token),
        Err(HubError::Unauthorized)
    ));
    assert_eq!(hub.device(&kept_token).unwrap().device, kept);
    assert!(matches!(
        hub.revoke("no-such-device", when()),
        Err(HubError::NoSuchDevice(d)) if d == "no-such-device"
    ));
    let devices = hub.devices(Some(A)).unwrap();
    let state: Vec<(String, bool)> = devices.iter().map(|d| (d.id.clone(), d.revoked)).collect();
    assert_eq!(state, vec![(kept, false), (gone.clone(), true)]);
    assert_eq!(hub.device_org(&gone).unwrap().as_deref(), Some(A));
}

pub fn devices_record_when_they_were_seen_and_their_clock<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    let (id, _) = enrolled(&*hub, A, 0);
    let info = |hub: &S| hub.devices(None).unwrap().remove(0);
    let fresh = info(&hub);
    assert_eq!(fresh.enrolled_at, "2025-03-04T09:00:00Z");
    assert_eq!((fresh.last_seen, fresh.clock_offset_secs), (None, None));
    assert!(!fresh.clock_flag);

    let seen = when() + TimeDelta::minutes(5);
    hub.seen(&id, seen, Some(seen.timestamp() + 90)).unwrap();
    let d = info(&hub);
    assert_eq!(d.last_seen.as_deref(), Some("2025-03-04T09:05:00Z"));
    assert_eq!(d.clock_offset_secs, Some(90));
    assert!(!d.clock_flag);

    // Without a device time the last offset is kept.
    hub.seen(&id, seen + TimeDelta::minutes(1), None).unwrap();
    let d = info(&hub);
    assert_eq!(d.last_seen.as_deref(), Some("2025-03-04T09:06:00Z"));
    assert_eq!(d.clock_offset_secs, Some(90));

    // A day and more off is flagged.
    hub.seen(&id, seen, Some(seen.timestamp() - 2 * 86_400))
        .unwrap();
    let d = info(&hub);
    assert_eq!(d.clock_offset_secs, Some(-2 * 86_400));
    assert!(d.clock_flag);
}

pub fn the_cursor_key_is_made_once_and_kept<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    let key = hub.cursor_key().unwrap();
    assert_ne!(key, [0; 32]);
    for _ in 0..3 {
        assert_eq!(hub.cursor_key().unwrap(), key);
    }
}

/// A new document for `record`, stored by `device` (a put on an empty id).
fn store<H: HubStore + ?Sized>(hub: &H, record: &Record, device: &str) {
    let mut am = outpost_proto::doc::create(record, automerge::ActorId::random()).unwrap();
    let heads = Heads::from_hashes(&am.get_heads());
    let data = am.save();
    let stored = hub
        .put(
            &record.org,
            &[Put {
                id: record.id,
                expect: Expect::Absent,
                data: &data,
                heads: &heads,
                origin: device,
                record,
                received_at: when(),
            }],
        )
        .unwrap();
    assert!(
        matches!(stored[0], outpost_proto::hub::PutResult::Stored { .. }),
        "{stored:?}"
    );
}

fn ids<H: HubStore + ?Sized>(hub: &H, org: Option<&str>, filter: &Filter) -> Vec<Uuid> {
    let mut out = Vec::new();
    hub.for_each_record(org, filter, &mut |r| {
        out.push(r.id);
        true
    })
    .unwrap();
    out
}

pub fn the_projection_follows_puts_and_erasures_and_filters<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    hub.add_org(B, "Boxholms kommun").unwrap();
    let (device, _) = enrolled(&*hub, A, 0);
    let on = |date: &str, site: &str| {
        let mut f = fixtures::visit_fields(A);
        f.insert("date".into(), json!(date));
        f.insert("site".into(), json!(site));
        fixtures::with(f, [])
    };
    let march = on("2025-03-04", "Mjölby bibliotek");
    let april = on("2025-04-10", "Ödeshög medborgarkontor");
    let may = on("2025-05-20", "Mjölby bibliotek");
    let course = fixtures::course(A);
    let theirs = fixtures::visit(B);
    for r in [&may, &march, &april, &course] {
        store(&*hub, r, &device);
    }
    store(&*hub, &theirs, "other-device");
    // The same id in another org too: ids are scoped by org.
    let mut twin = fixtures::visit_fields(B);
    twin.insert("id".into(), json!(march.id.to_string()));
    store(&*hub, &fixtures::with(twin, []), "other-device");

    let everything = Filter::default();
    // In org, then date order (the course is on 2025-03-04 too: by
    // created_at, then id, the same for both backends).
    let all_a = ids(&*hub, Some(A), &everything);
    assert_eq!(all_a.len(), 4);
    assert_eq!(all_a[3], may.id);
    assert_eq!(all_a[2], april.id);
    assert_eq!(ids(&*hub, None, &everything).len(), 6);
    assert_eq!(ids(&*hub, Some(B), &everything).len(), 2);

    let kind = Filter {
        kind: Some(Kind::Course),
        ..Filter::default()
    };
    assert_eq!(ids(&*hub, Some(A), &kind), vec![course.id]);
    let spring = Filter {
        from: chrono::NaiveDate::from_ymd_opt(2025, 4, 1),
        to: chrono::NaiveDate::from_ymd_opt(2025, 4, 30),
        ..Filter::default()
    };
    assert_eq!(ids(&*hub, Some(A), &spring), vec![april.id]);
    // Sites compare case-insensitively, beyond A–Z.
    let site = Filter {
        site: Some(" ÖDESHÖG MEDBORGARKONTOR".into()),
        ..Filter::default()
    };
    assert_eq!(ids(&*hub, None, &site), vec![april.id]);

    // The callback stops the stream.
    let mut seen = 0;
    hub.for_each_record(None, &everything, &mut |_| {
        seen += 1;
        seen < 2
    })
    .unwrap();
    assert_eq!(seen, 2);

    // The projection is the record as stored, and the holders of an id
    // are every org that has it.
    let mut got = Vec::new();
    hub.for_each_record(Some(A), &kind, &mut |r| {
        got.push(r);
        true
    })
    .unwrap();
    assert_eq!(got, vec![course.clone()]);
    assert_eq!(
        hub.record_orgs(&march.id.to_string()).unwrap(),
        vec![B.to_string(), A.to_string()]
    );
    assert_eq!(hub.record_orgs("not-an-id").unwrap(), Vec::<String>::new());

    // An erasure takes the record out of the projection of its org only.
    hub.erase(A, &[march.id], when()).unwrap();
    assert!(!ids(&*hub, Some(A), &everything).contains(&march.id));
    assert!(ids(&*hub, Some(B), &everything).contains(&march.id));
    assert_eq!(
        hub.record_orgs(&march.id.to_string()).unwrap(),
        vec![B.to_string()]
    );
}

// ---- dashboard: sign-in codes and sessions (dash) ----

pub fn a_signin_code_makes_one_session_with_its_tokens_view_until_it_expires<S>(
    make: impl Fn() -> S,
) where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    let all = hub.create_admin_token(None).unwrap();
    let scoped = hub.create_admin_token(Some(A)).unwrap();
    assert!(matches!(
        hub.signin_code("opa_wrong", when()),
        Err(HubError::Unauthorized)
    ));

    // The code is typed by a person: any case, dashes optional.
    let code = hub.signin_code(&scoped, when()).unwrap();
    assert_eq!(crate::normalize_code(&code), code);
    let typed = code.to_lowercase().replace('-', "");
    let (secret, auth) = hub.signin(&typed, when() + TimeDelta::minutes(1)).unwrap();
    assert_eq!(
        auth,
        hub.admin(&scoped).unwrap(),
        "the session sees what its token sees"
    );
    assert!(secret.starts_with("ops_"));
    assert_eq!(
        hub.session(&secret, when() + TimeDelta::minutes(2))
            .unwrap(),
        auth
    );
    // Once only.
    assert!(matches!(
        hub.signin(&code, when() + TimeDelta::minutes(2)),
        Err(HubError::BadCode)
    ));
    assert!(matches!(
        hub.signin("AAAA-BBBB-CCCC-DDDD", when()),
        Err(HubError::BadCode)
    ));

    // Valid up to its 15 minutes, not after.
    let late = hub.signin_code(&all, when()).unwrap();
    assert!(matches!(
        hub.signin(
            &late,
            when() + crate::SIGNIN_CODE_TTL + TimeDelta::seconds(1)
        ),
        Err(HubError::BadCode)
    ));
    let in_time = hub.signin_code(&all, when()).unwrap();
    let (other, auth) = hub
        .signin(&in_time, when() + crate::SIGNIN_CODE_TTL)
        .unwrap();
    assert_eq!(auth.org, None);
    assert_ne!(other, secret, "every session has a secret of its own");
    assert!(matches!(
        hub.session("ops_wrong", when()),
        Err(HubError::Unauthorized)
    ));
}

pub fn a_session_ends_when_idle_when_old_and_when_signed_out<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    let token = hub.create_admin_token(None).unwrap();
    let start = |at| {
        let code = hub.signin_code(&token, at).unwrap();
        hub.signin(&code, at).unwrap().0
    };

    // Idle: each use moves the idle limit on.
    let idle = start(when());
    let mut at = when();
    for _ in 0..3 {
        at += crate::SESSION_IDLE - TimeDelta::minutes(1);
        assert!(hub.session(&idle, at).is_ok(), "used within the idle time");
    }
    assert!(matches!(
        hub.session(&idle, at + crate::SESSION_IDLE),
        Err(HubError::Unauthorized)
    ));
    // Gone for good, even asked about at an earlier time.
    assert!(hub.session(&idle, at).is_err());

    // Old: however busy, a session ends 12 hours after signing in.
    let busy = start(when());
    let mut at = when();
    while at + TimeDelta::minutes(20) < when() + crate::SESSION_MAX {
        at += TimeDelta::minutes(20);
        assert!(hub.session(&busy, at).is_ok());
    }
    assert!(matches!(
        hub.session(&busy, when() + crate::SESSION_MAX),
        Err(HubError::Unauthorized)
    ));

    // Signed out: at once; again is no error.
    let out = start(when());
    hub.signout(&out).unwrap();
    assert!(matches!(
        hub.session(&out, when()),
        Err(HubError::Unauthorized)
    ));
    hub.signout(&out).unwrap();
}
