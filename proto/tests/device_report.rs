//! The device report on the wire: the session sends it with every request,
//! its `waiting` from the driver's count, and the encoding stays
//! compatible both ways (an old hub reads a new laptop's requests, a new
//! hub reads an old laptop's).

use outpost_proto::sync::{
    self, DeviceReport, DocPush, Effect, EnrollRequest, Heads, Input, PROTOCOL_VERSION,
    PullRequest, PushResponse, Session,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn report() -> DeviceReport {
    DeviceReport {
        name: "Skänninge bibliotek · 3f2a".into(),
        site: "Skänninge bibliotek".into(),
        staff: "AB".into(),
        waiting: 0,
    }
}

fn doc(n: u8) -> DocPush {
    DocPush {
        id: Uuid::from_bytes([n; 16]),
        heads: Heads::default(),
        data: vec![n],
        full: true,
    }
}

#[test]
fn every_request_carries_the_report_with_the_waiting_count_of_its_time() {
    let mut s = Session::new(0, 1_700_000_000, 2, 10).with_report(report());
    s.start();
    let Effect::SendPush(push) = s.handle(Input::PendingLoaded {
        docs: vec![doc(1), doc(2)],
        waiting: 3,
        erased: vec![],
        last_seq: 2,
    }) else {
        panic!("a push was expected");
    };
    assert_eq!(
        push.report,
        Some(DeviceReport {
            waiting: 3,
            ..report()
        }),
        "a push reports what waited when it was made, its own batch included"
    );
    let applied = s.handle(Input::PushAnswered(PushResponse {
        v: PROTOCOL_VERSION,
        results: vec![],
        erased: vec![],
    }));
    assert!(matches!(applied, Effect::ApplyPush(_)), "{applied:?}");
    assert!(matches!(
        s.handle(Input::Applied),
        Effect::LoadPending { .. }
    ));
    // One record is still pending (e.g. the hub refused it): the pull that
    // ends the session says so.
    let Effect::SendPull(pull) = s.handle(Input::PendingLoaded {
        docs: vec![],
        waiting: 1,
        erased: vec![],
        last_seq: 0,
    }) else {
        panic!("a pull was expected");
    };
    assert_eq!(pull.device_time, Some(1_700_000_000));
    assert_eq!(
        pull.report,
        Some(DeviceReport {
            waiting: 1,
            ..report()
        })
    );
}

#[test]
fn a_session_without_a_report_sends_none() {
    let mut s = Session::new(0, 5, 2, 10);
    s.start();
    let Effect::SendPull(pull) = s.handle(Input::PendingLoaded {
        docs: vec![],
        waiting: 0,
        erased: vec![],
        last_seq: 0,
    }) else {
        panic!("a pull was expected");
    };
    assert_eq!(pull.report, None);
}

/// The pull request as hubs before device reports declared it.
#[derive(Debug, Serialize, Deserialize)]
struct OldPullRequest {
    v: u16,
    since: u64,
    limit: u32,
    #[serde(default)]
    epoch: u64,
    #[serde(default, with = "serde_bytes")]
    sig: Vec<u8>,
    #[serde(default)]
    config_version: u64,
}

/// The enrolment request as hubs before device reports declared it.
#[derive(Debug, Serialize, Deserialize)]
struct OldEnrollRequest {
    v: u16,
    code: String,
    device: Uuid,
    device_time: i64,
    #[serde(default)]
    org: Option<String>,
}

#[test]
fn old_hubs_skip_the_report_and_new_hubs_read_old_requests() {
    let new = PullRequest {
        v: PROTOCOL_VERSION,
        since: 7,
        limit: 100,
        epoch: 3,
        sig: vec![1, 2, 3],
        config_version: 2,
        device_time: Some(42),
        report: Some(report()),
    };
    let old: OldPullRequest = sync::decode_body(&sync::encode_body(&new).unwrap()).unwrap();
    assert_eq!((old.since, old.limit, old.epoch), (7, 100, 3));
    assert_eq!(old.sig, vec![1, 2, 3]);
    assert_eq!(old.config_version, 2);

    let back: PullRequest = sync::decode_body(&sync::encode_body(&old).unwrap()).unwrap();
    assert_eq!(back.report, None);
    assert_eq!(back.device_time, None);
    assert_eq!(back.since, 7);

    let enrol = EnrollRequest {
        v: PROTOCOL_VERSION,
        code: "ABCD-EFGH".into(),
        device: Uuid::from_bytes([9; 16]),
        device_time: 1,
        org: Some("mjolby".into()),
        report: Some(report()),
    };
    let old: OldEnrollRequest = sync::decode_body(&sync::encode_body(&enrol).unwrap()).unwrap();
    assert_eq!(old.org.as_deref(), Some("mjolby"));
    let back: EnrollRequest = sync::decode_body(&sync::encode_body(&old).unwrap()).unwrap();
    assert_eq!(back.report, None);
    assert_eq!(back.device, enrol.device);

    // A report from a laptop that knows only its name reads with the rest
    // empty.
    #[derive(Serialize)]
    struct NameOnly {
        name: String,
    }
    let r: DeviceReport = sync::decode_body(
        &sync::encode_body(&NameOnly {
            name: "Hörnet".into(),
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(r.name, "Hörnet");
    assert_eq!((r.site.as_str(), r.waiting), ("", 0));
}
