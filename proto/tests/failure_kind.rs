//! A failed sync carries whether retrying can help into the session's
//! outcome, and outcomes saved before that existed still read.

use outpost_proto::sync::{
    Effect, Failure, FailureKind, Input, Outcome, PROTOCOL_VERSION, PullRequest, Session,
};

fn failed_with(input: Input) -> Outcome {
    let mut s = Session::new(0, 0, 10, 10);
    let effect = s.handle(Input::PendingLoaded {
        docs: vec![],
        erased: vec![],
        last_seq: 0,
    });
    assert_eq!(
        effect,
        Effect::SendPull(PullRequest {
            v: PROTOCOL_VERSION,
            since: 0,
            limit: 10,
            epoch: 0,
            sig: Vec::new(),
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
