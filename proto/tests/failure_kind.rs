//! A failed sync carries whether retrying can help into the session's
//! outcome, and outcomes saved before that existed still read.

use outpost_proto::sync::{
    Effect, Failure, FailureKind, Input, Outcome, PROTOCOL_VERSION, PullRequest, Session,
};

fn failed_with(input: Input) -> Outcome {
    let mut s = Session::new(0, 0, 10, 10);
    let effect = s.handle(Input::PendingLoaded {
        docs: vec![],
        waiting: 0,
        erased: vec![],
        last_seq: 0,
    });
    assert_eq!(
        effect,
        Effect::SendPull(PullRequest {
            device_time: Some(0),
            report: None,
            v: PROTOCOL_VERSION,
            since: 0,
            limit: 10,
            epoch: 0,
            sig: Vec::new(),
            config_version: 0,
        })
    );
    match s.handle(input) {
        Effect::Done(outcome) => outcome,
        other => panic!("expected the session to end, got {other:?}"),
    }
}

#[test]
fn the_failure_kind_reaches_the_outcome() {
    let outcome = failed_with(Input::Failed(Failure::needs_person(
        "this laptop's token was not accepted by the hub",
    )));
    assert_eq!(outcome.error_kind, Some(FailureKind::NeedsPerson));
    assert_eq!(
        outcome.error.as_deref(),
        Some("this laptop's token was not accepted by the hub")
    );
    assert!(!outcome.complete());
}

#[test]
fn a_bare_message_is_a_transient_failure() {
    let outcome = failed_with(Input::Failed("pull response lost".into()));
    assert_eq!(outcome.error_kind, Some(FailureKind::Transient));
}

#[test]
fn outcomes_saved_before_failure_kinds_still_parse() {
    let old = r#"{"pushed_docs":1,"pushed_erasures":0,"pulled_docs":0,"pulled_erasures":0,
        "requests":2,"refused":[],"error":"could not reach the hub"}"#;
    let outcome: Outcome = serde_json::from_str(old).unwrap();
    assert_eq!(outcome.error_kind, None);
    assert_eq!(outcome.error.as_deref(), Some("could not reach the hub"));
    let new = serde_json::to_value(Outcome {
        error: Some("x".into()),
        error_kind: Some(FailureKind::NeedsPerson),
        ..Outcome::default()
    })
    .unwrap();
    assert_eq!(new["error_kind"], "needs_person");
}

/// A page received but not applied (the disk filled up while saving it)
/// is not reported as received: the outcome says what the laptop kept.
#[test]
fn a_failed_session_counts_only_what_was_applied() {
    use outpost_proto::sync::{FeedBody, FeedItem, PullResponse};
    let page = |n: usize, next: u64| PullResponse {
        v: PROTOCOL_VERSION,
        items: (0..n)
            .map(|_| FeedItem {
                id: uuid::Uuid::new_v4(),
                body: FeedBody::Erased,
            })
            .collect(),
        next,
        more: true,
        epoch: 5,
        sig: vec![1],
        config: None,
    };
    let mut s = Session::new(0, 0, 10, 10);
    s.handle(Input::PendingLoaded {
        docs: vec![],
        waiting: 0,
        erased: vec![],
        last_seq: 0,
    });
    assert!(matches!(
        s.handle(Input::PullAnswered(page(3, 3))),
        Effect::ApplyPull(_)
    ));
    // Applied: the next pull sends back the page's signed cursor.
    match s.handle(Input::Applied) {
        Effect::SendPull(req) => {
            assert_eq!((req.since, req.epoch, req.sig), (3, 5, vec![1]));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.handle(Input::PullAnswered(page(4, 7))),
        Effect::ApplyPull(_)
    ));
    let outcome = match s.handle(Input::Failed(Failure::transient("the disk is full"))) {
        Effect::Done(o) => o,
        other => panic!("{other:?}"),
    };
    assert_eq!(outcome.pulled_erasures, 3, "only the applied page counts");
}
