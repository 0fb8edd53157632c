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
use outpost_proto::hub::{Expect, HubStorage, Put, RateTake, RateTaken};
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
            // devices (dev)
            devices_keep_their_latest_report,
            // ---- dashboard: sign-in codes and sessions (dash) ----
            a_signin_code_makes_one_session_with_its_tokens_view_until_it_expires,
            a_session_ends_when_idle_when_old_and_when_signed_out
        );
        // ops: rate limits in the database.
        $crate::hub_store_conformance!(@sync_tests $make;
            rate_counters_add_up_per_key_and_window_and_refuse_whole,
            rate_counters_of_ended_windows_are_forgotten,
            concurrent_rate_takes_never_pass_the_limit
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
    (@sync_tests $make:expr; $($name:ident),*) => {
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
    assert_eq!(admin.orgs, None);
    assert!(admin.check(B).is_ok());
    // Surrounding whitespace (a token file's newline) does not matter.
    let coordinator = hub.admin(&format!("{scoped}\n")).unwrap();
    assert_eq!(coordinator.single_org(), Some(A));
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

// ---------------------------------------------------------------------------
// ops: rate limits in the database (`rate_take`, `rate_counts`)
// ---------------------------------------------------------------------------

fn take(key: &str, period: i64, add: u64, limit: u64) -> RateTake {
    RateTake {
        key: key.into(),
        period,
        expires: (period + 1) * 60,
        add,
        limit,
    }
}

pub fn rate_counters_add_up_per_key_and_window_and_refuse_whole<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    let now = 100 * 60;
    let counts = |keys: &[(&str, i64)]| {
        let keys: Vec<(String, i64)> = keys.iter().map(|(k, p)| (k.to_string(), *p)).collect();
        hub.rate_counts(&keys).unwrap()
    };
    assert_eq!(counts(&[("a", 100), ("b", 100)]), vec![0, 0]);
    assert_eq!(
        hub.rate_take(&[take("a", 100, 3, 10), take("b", 100, 1, 2)], now)
            .unwrap(),
        RateTaken::Taken(vec![3, 1])
    );
    assert_eq!(
        hub.rate_take(&[take("a", 100, 7, 10), take("b", 100, 1, 2)], now)
            .unwrap(),
        RateTaken::Taken(vec![10, 2]),
        "up to the limit itself"
    );
    // The second counter would pass: the first is not added to either.
    assert_eq!(
        hub.rate_take(&[take("c", 100, 1, 10), take("b", 100, 1, 2)], now)
            .unwrap(),
        RateTaken::Refused { index: 1, used: 2 }
    );
    assert_eq!(
        counts(&[("a", 100), ("b", 100), ("c", 100)]),
        vec![10, 2, 0]
    );
    assert_eq!(
        hub.rate_take(&[take("a", 100, 1, 10)], now).unwrap(),
        RateTaken::Refused { index: 0, used: 10 }
    );
    // Another window, another key: counted apart. Nothing to add is
    // always taken.
    assert_eq!(
        hub.rate_take(&[take("a", 101, 1, 10), take("A", 100, 0, 0)], now)
            .unwrap(),
        RateTaken::Taken(vec![1, 0])
    );
    assert_eq!(
        counts(&[("a", 100), ("a", 101), ("A", 100)]),
        vec![10, 1, 0]
    );
    // Large counts survive the round trip (i64 in the databases).
    let big = u64::try_from(i64::MAX).unwrap();
    assert_eq!(
        hub.rate_take(&[take("big", 100, big - 1, u64::MAX)], now)
            .unwrap(),
        RateTaken::Taken(vec![big - 1])
    );
}

pub fn rate_counters_of_ended_windows_are_forgotten<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    hub.rate_take(&[take("old", 5, 4, 10)], 5 * 60).unwrap();
    assert_eq!(hub.rate_counts(&[("old".into(), 5)]).unwrap(), vec![4]);
    // A take long after window 5 ended (at 6 * 60).
    hub.rate_take(&[take("new", 50, 1, 10)], 50 * 60).unwrap();
    assert_eq!(
        hub.rate_counts(&[("old".into(), 5), ("new".into(), 50)])
            .unwrap(),
        vec![0, 1]
    );
}

pub fn concurrent_rate_takes_never_pass_the_limit<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore> + Sync,
{
    const THREADS: usize = 4;
    const TRIES: usize = 25;
    let hub = make();
    let taken = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..TRIES {
                    let r = hub
                        .rate_take(&[take("shared", 7, 1, 60), take("all", 7, 1, 1000)], 7 * 60)
                        .unwrap();
                    if let RateTaken::Taken(_) = r {
                        taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(taken.into_inner(), 60, "exactly the limit was taken");
    assert_eq!(
        hub.rate_counts(&[("shared".into(), 7), ("all".into(), 7)])
            .unwrap(),
        vec![60, 60],
        "refused takes added to no counter"
    );
}

// --- Accounts and audit log (acct) ---

/// The accounts and audit-log checks, each its own `#[test]`. Besides the
/// store, a backend gives `$sql`, a closure `Fn(&S, &str)` that runs one
/// SQL statement directly on the store's database (as someone with the
/// database file or a psql session would), so the suite can show that an
/// entry edited or deleted behind the hub's back is detected.
#[macro_export]
macro_rules! hub_accounts_conformance {
    ($make:expr, $sql:expr) => {
        $crate::hub_accounts_conformance!(@tests $make, $sql;
            accounts_have_ids_names_roles_and_scopes,
            a_rotated_or_revoked_token_stops_at_once_and_the_last_admin_stays,
            the_audit_chain_verifies_and_streams_by_org,
            an_audit_entry_edited_in_the_database_is_detected,
            a_deleted_audit_entry_is_detected,
            concurrent_appends_make_one_chain
        );
    };
    (@tests $make:expr, $sql:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name($make, $sql);
            }
        )*
    };
}

pub fn accounts_have_ids_names_roles_and_scopes<S>(make: impl Fn() -> S, _sql: impl Fn(&S, &str))
where
    S: Deref<Target: HubStore>,
{
    use crate::Role;
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    hub.add_org(B, "Boxholms kommun").unwrap();
    let legacy = hub.create_admin_token(None).unwrap();
    let (admin, admin_token) = hub
        .create_account(" Anna ", Role::Admin, None, when())
        .unwrap();
    assert!(
        admin.id.starts_with("tok_") && admin.id.len() == 12,
        "{}",
        admin.id
    );
    assert_eq!(admin.name, "Anna");
    let both = vec![A.to_string(), B.to_string()];
    let (coord, coord_token) = hub
        .create_account(
            "Samordnare",
            Role::Coordinator,
            Some(&both),
            when() + TimeDelta::seconds(1),
        )
        .unwrap();
    assert!(coord_token.starts_with("opa_"));

    let who = hub.admin(&coord_token).unwrap();
    assert_eq!(
        (
            who.id.as_str(),
            who.name.as_str(),
            who.role,
            who.orgs.clone()
        ),
        (
            coord.id.as_str(),
            "Samordnare",
            Role::Coordinator,
            Some(both.clone())
        )
    );
    assert!(who.check(A).is_ok() && who.check(B).is_ok());
    assert!(matches!(who.check("other"), Err(HubError::Forbidden(_))));
    assert!(matches!(
        who.check_change(Some(A)),
        Err(HubError::ReadOnly(_))
    ));
    assert!(matches!(who.check_change(None), Err(HubError::ReadOnly(_))));
    let boss = hub.admin(&admin_token).unwrap();
    assert!(boss.check_change(None).is_ok() && boss.check_change(Some(B)).is_ok());
    let scoped = hub
        .admin(&hub.create_admin_token(Some(A)).unwrap())
        .unwrap();
    assert!(scoped.check_change(Some(A)).is_ok());
    assert!(matches!(
        scoped.check_change(Some(B)),
        Err(HubError::Forbidden(_))
    ));
    assert!(matches!(
        scoped.check_change(None),
        Err(HubError::Forbidden(_))
    ));
    assert_eq!(scoped.single_org(), Some(A));

    // Refused: a coordinator of no org, an unknown org, an empty name.
    assert!(matches!(
        hub.create_account("x", Role::Coordinator, None, when()),
        Err(HubError::Invalid(_))
    ));
    assert!(matches!(
        hub.create_account("x", Role::Coordinator, Some(&["nope".to_string()]), when()),
        Err(HubError::NoSuchOrg(o)) if o == "nope"
    ));
    assert!(matches!(
        hub.create_account("  ", Role::Admin, None, when()),
        Err(HubError::Invalid(_))
    ));

    let listed = hub.accounts().unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(
        listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        vec!["Anna", "Samordnare", "admin", "admin"],
        "by creation time ({}: Anna, a second later Samordnare; create_admin_token: now, named admin)",
        when()
    );
    // The two made now may share a second: either order.
    let legacy_id = hub.admin(&legacy).unwrap().id;
    assert!(listed[2..].iter().any(|a| a.id == legacy_id));
    let c = listed.iter().find(|a| a.id == coord.id).unwrap();
    assert_eq!(c.orgs.as_deref(), Some(both.as_slice()));
    assert_eq!(c.created_at, "2025-03-04T09:00:01Z");
    assert!(c.last_used.is_some(), "noted when the token was checked");
    assert!(listed.iter().all(|a| a.revoked_at.is_none()));
    assert_eq!(
        crate::accounts::resolve_account(&*hub, &coord.id[..8])
            .unwrap()
            .id,
        coord.id
    );
}

pub fn a_rotated_or_revoked_token_stops_at_once_and_the_last_admin_stays<S>(
    make: impl Fn() -> S,
    _sql: impl Fn(&S, &str),
) where
    S: Deref<Target: HubStore>,
{
    use crate::Role;
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    let (first, first_token) = hub
        .create_account("first", Role::Admin, None, when())
        .unwrap();
    // The only hub-wide admin cannot be revoked (an org-scoped one does
    // not count: it cannot manage tokens).
    hub.create_admin_token(Some(A)).unwrap();
    assert!(matches!(
        hub.revoke_account(&first.id, when()),
        Err(HubError::LastAdmin(id)) if id == first.id
    ));
    assert!(hub.admin(&first_token).is_ok());

    let rotated = hub.rotate_account(&first.id).unwrap();
    assert_ne!(rotated, first_token);
    assert!(matches!(
        hub.admin(&first_token),
        Err(HubError::Unauthorized)
    ));
    assert_eq!(
        hub.admin(&rotated).unwrap().id,
        first.id,
        "the same account"
    );

    let (second, second_token) = hub
        .create_account("second", Role::Admin, None, when())
        .unwrap();
    hub.revoke_account(&first.id, when()).unwrap();
    hub.revoke_account(&first.id, when())
        .expect("again: no change");
    assert!(matches!(hub.admin(&rotated), Err(HubError::Unauthorized)));
    assert!(matches!(
        hub.rotate_account(&first.id),
        Err(HubError::Invalid(_))
    ));
    assert!(hub.admin(&second_token).is_ok(), "others unaffected");
    assert!(matches!(
        hub.revoke_account(&second.id, when()),
        Err(HubError::LastAdmin(_))
    ));
    assert!(matches!(
        hub.revoke_account("tok_00000000", when()),
        Err(HubError::NoSuchAccount(_))
    ));
    assert!(matches!(
        hub.rotate_account("tok_00000000"),
        Err(HubError::NoSuchAccount(_))
    ));
    let listed = hub.accounts().unwrap();
    let f = listed.iter().find(|a| a.id == first.id).unwrap();
    assert_eq!(f.revoked_at.as_deref(), Some("2025-03-04T09:00:00Z"));
}

/// Appends `n` entries alternating between orgs A, B and none.
fn append_some<H: HubStore + ?Sized>(hub: &H, n: usize) {
    let who = crate::Actor {
        id: Some("tok_12345678".into()),
        name: "Anna".into(),
    };
    for i in 0..n {
        let org = [Some(A), Some(B), None][i % 3];
        crate::accounts::audit_at(hub, &who, "invite", org, &format!("entry {i}"), when()).unwrap();
    }
}

fn verdict<H: HubStore + ?Sized>(hub: &H) -> crate::AuditVerdict {
    crate::verify_audit(hub).unwrap()
}

pub fn the_audit_chain_verifies_and_streams_by_org<S>(make: impl Fn() -> S, _sql: impl Fn(&S, &str))
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    let empty = verdict(&*hub);
    assert!(empty.intact && empty.entries == 0, "{empty:?}");
    append_some(&*hub, 7);
    let v = verdict(&*hub);
    assert!(v.intact, "{v:?}");
    assert_eq!(v.entries, 7);
    let head = hub.audit_head().unwrap().unwrap();
    assert_eq!(head.position, 7);
    let mut all = Vec::new();
    hub.for_each_audit(None, &mut |e| {
        all.push(e);
        true
    })
    .unwrap();
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(all[6].hash, head.hash);
    assert_eq!(all[0].actor_name, "Anna");
    assert_eq!(all[0].at, "2025-03-04T09:00:00Z");
    let mut only_a = Vec::new();
    hub.for_each_audit(Some(&[A.to_string()]), &mut |e| {
        only_a.push(e.position);
        true
    })
    .unwrap();
    assert_eq!(only_a, vec![1, 4, 7]);
}

pub fn an_audit_entry_edited_in_the_database_is_detected<S>(
    make: impl Fn() -> S,
    sql: impl Fn(&S, &str),
) where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    append_some(&*hub, 5);
    sql(
        &hub,
        "UPDATE audit_log SET detail = 'nothing to see' WHERE position = 3",
    );
    let v = verdict(&*hub);
    assert!(!v.intact);
    assert_eq!(v.broken_at, Some(3), "{v:?}");
    assert!(v.problem.unwrap().contains("changed"));

    // Two entries swapped (each keeping its own hash) break the chain too.
    let hub = make();
    append_some(&*hub, 5);
    sql(
        &hub,
        "UPDATE audit_log SET position = 100 WHERE position = 2",
    );
    sql(&hub, "UPDATE audit_log SET position = 2 WHERE position = 4");
    sql(
        &hub,
        "UPDATE audit_log SET position = 4 WHERE position = 100",
    );
    assert_eq!(verdict(&*hub).broken_at, Some(2));
}

pub fn a_deleted_audit_entry_is_detected<S>(make: impl Fn() -> S, sql: impl Fn(&S, &str))
where
    S: Deref<Target: HubStore>,
{
    let hub = make();
    append_some(&*hub, 5);
    sql(&hub, "DELETE FROM audit_log WHERE position = 2");
    let v = verdict(&*hub);
    assert!(!v.intact);
    assert_eq!(v.broken_at, Some(2), "{v:?}");
    assert!(v.problem.unwrap().contains("missing"));

    // The last entries removed: the head row still names them.
    let hub = make();
    append_some(&*hub, 5);
    sql(&hub, "DELETE FROM audit_log WHERE position >= 4");
    let v = verdict(&*hub);
    assert_eq!(v.broken_at, Some(4), "{v:?}");

    // Renumbered after a removal: the hashes no longer chain.
    let hub = make();
    append_some(&*hub, 5);
    sql(&hub, "DELETE FROM audit_log WHERE position = 2");
    sql(&hub, "UPDATE audit_log SET position = 2 WHERE position = 3");
    sql(&hub, "UPDATE audit_log SET position = 3 WHERE position = 4");
    sql(&hub, "UPDATE audit_log SET position = 4 WHERE position = 5");
    let v = verdict(&*hub);
    assert!(!v.intact, "{v:?}");
}

pub fn concurrent_appends_make_one_chain<S>(make: impl Fn() -> S, _sql: impl Fn(&S, &str))
where
    S: Deref<Target: HubStore>,
    S::Target: Sync,
{
    let hub = make();
    let store: &S::Target = &hub;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| append_some(store, 10));
        }
    });
    let v = verdict(store);
    assert!(v.intact, "{v:?}");
    assert_eq!(v.entries, 40);
}

// --- devices (dev): what a laptop reports about itself -------------------

pub fn devices_keep_their_latest_report<S>(make: impl Fn() -> S)
where
    S: Deref<Target: HubStore>,
{
    use outpost_proto::device::DeviceReport;
    let hub = make();
    hub.add_org(A, "Mjölby kommun").unwrap();
    hub.add_org(B, "Boxholms kommun").unwrap();
    let (id, _) = enrolled(&*hub, A, 0);
    let (other, _) = enrolled(&*hub, B, 1);
    let info = |hub: &S, id: &str| {
        hub.devices(None)
            .unwrap()
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
    };
    let fresh = info(&hub, &id);
    assert_eq!(
        (fresh.name, fresh.site, fresh.staff, fresh.waiting),
        (None, None, None, None),
        "a device that never reported shows nothing"
    );

    let report = DeviceReport {
        name: "Skänninge bibliotek · 3f2a".into(),
        site: "Skänninge bibliotek".into(),
        staff: "ÅÄ".into(),
        waiting: 3,
    };
    hub.report_device(&id, &report).unwrap();
    let d = info(&hub, &id);
    assert_eq!(d.name.as_deref(), Some("Skänninge bibliotek · 3f2a"));
    assert_eq!(d.site.as_deref(), Some("Skänninge bibliotek"));
    assert_eq!(d.staff.as_deref(), Some("ÅÄ"));
    assert_eq!(d.waiting, Some(3));
    assert_eq!(d.last_seen, None, "a report alone is not a visit");

    // The latest report wins; the other device is untouched.
    hub.report_device(
        &id,
        &DeviceReport {
            name: "Datorhörnan".into(),
            waiting: 0,
            ..report.clone()
        },
    )
    .unwrap();
    let d = info(&hub, &id);
    assert_eq!(
        (d.name.as_deref(), d.waiting),
        (Some("Datorhörnan"), Some(0))
    );
    assert_eq!(info(&hub, &other).name, None);

    // An unknown device: nothing is stored, nothing fails.
    hub.report_device("no-such-device", &report).unwrap();
    assert_eq!(hub.devices(None).unwrap().len(), 2);

    // Revoked devices stay listed under their name.
    hub.revoke(&id, when()).unwrap();
    let d = info(&hub, &id);
    assert!(d.revoked);
    assert_eq!(d.name.as_deref(), Some("Datorhörnan"));
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
    assert_eq!(auth.orgs, None);
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
    hub.add_org(A, "Mjölby kommun").unwrap();
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
    // Its token revoked or rotated: at once, and its unused codes with it.
    let (anna, anna_token) = hub
        .create_account("Anna", crate::Role::Admin, None, when())
        .unwrap();
    let revoked = {
        let code = hub.signin_code(&anna_token, when()).unwrap();
        hub.signin(&code, when()).unwrap().0
    };
    let unused = hub.signin_code(&anna_token, when()).unwrap();
    hub.revoke_account(&anna.id, when()).unwrap();
    assert!(matches!(
        hub.session(&revoked, when()),
        Err(HubError::Unauthorized)
    ));
    assert!(matches!(
        hub.signin(&unused, when()),
        Err(HubError::BadCode)
    ));
    let (bo, bo_token) = hub
        .create_account(
            "Bo",
            crate::Role::Coordinator,
            Some(&[A.to_string()]),
            when(),
        )
        .unwrap();
    let rotated = {
        let code = hub.signin_code(&bo_token, when()).unwrap();
        let (secret, auth) = hub.signin(&code, when()).unwrap();
        assert_eq!(
            (auth.id.as_str(), auth.role),
            (bo.id.as_str(), crate::Role::Coordinator)
        );
        secret
    };
    hub.rotate_account(&bo.id).unwrap();
    assert!(matches!(
        hub.session(&rotated, when()),
        Err(HubError::Unauthorized)
    ));
}
