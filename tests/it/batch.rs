//! `RecordEvents` through the server: a till's offline day in one call,
//! each event with its own outcome in order, one bad event refusing only
//! itself, a retried batch counting nothing twice, and an adjustment from a
//! key that may not adjust refused in its slot.

use tonic::{Code, Request, transport::Channel};

use crate::harness::TestServer;
use tierd::grpc::{
    ServeOptions,
    auth::{ApiKey, Keyring, Role, hash_key},
    pb::{self, event::Event as Kind, event_outcome::Outcome, ingest_client::IngestClient},
};

fn event(kind: Kind) -> pb::Event {
    pb::Event { event: Some(kind) }
}

/// A day at a till for member `ann`: a purchase, its partial return, a
/// purchase whose amount is 0 (bad), an activity, an adjustment and a
/// redemption.
fn day(server: &TestServer) -> Vec<pb::Event> {
    let bad = server.purchase("ann", "p2", 0);
    let now = server.purchase("ann", "x", 1).occurred_at;
    vec![
        event(Kind::Purchase(server.purchase("ann", "p1", 60_000))),
        event(Kind::Return(server.refund("ann", "r1", "p1", 10_000))),
        event(Kind::Purchase(bad)),
        event(Kind::Activity(pb::RecordActivityRequest {
            member_id: "ann".into(),
            transaction_id: "v1".into(),
            kind: "referral".into(),
            occurred_at: now,
            attributes: Default::default(),
        })),
        event(Kind::Adjustment(pb::AdjustPointsRequest {
            member_id: "ann".into(),
            transaction_id: "a1".into(),
            points: 40,
            reason: "goodwill".into(),
            occurred_at: None,
        })),
        event(Kind::Redemption(pb::RedeemPointsRequest {
            member_id: "ann".into(),
            transaction_id: "x1".into(),
            points: 100,
            order_id: String::new(),
            reward_id: String::new(),
        })),
    ]
}

/// The kind of each outcome, and the error code where it is one.
fn shape(outcomes: &[pb::EventOutcome]) -> Vec<(&'static str, i32)> {
    outcomes
        .iter()
        .map(|o| match &o.outcome {
            Some(Outcome::Purchase(_)) => ("purchase", 0),
            Some(Outcome::Return(_)) => ("return", 0),
            Some(Outcome::Activity(_)) => ("activity", 0),
            Some(Outcome::Adjustment(_)) => ("adjustment", 0),
            Some(Outcome::Redemption(_)) => ("redemption", 0),
            Some(Outcome::Error(e)) => ("error", e.code),
            None => ("none", -1),
        })
        .collect()
}

async fn send(channel: &Channel, events: Vec<pb::Event>) -> Vec<pb::EventOutcome> {
    IngestClient::new(channel.clone())
        .record_events(pb::RecordEventsRequest { events })
        .await
        .expect("batch accepted")
        .into_inner()
        .outcomes
}

#[tokio::test]
async fn a_day_of_events_is_recorded_in_order_each_with_its_outcome() {
    let mut server = TestServer::start().await;
    let outcomes = send(&server.channel, day(&server)).await;
    assert_eq!(
        shape(&outcomes),
        [
            ("purchase", 0),
            ("return", 0),
            ("error", Code::InvalidArgument as i32),
            ("activity", 0),
            ("adjustment", 0),
            ("redemption", 0)
        ]
    );
    let Some(Outcome::Error(bad)) = &outcomes[2].outcome else {
        panic!("an error slot");
    };
    assert_eq!(bad.field, "amount_minor");
    let Some(Outcome::Return(back)) = &outcomes[1].outcome else {
        panic!("a return slot");
    };
    // 600.00 earned 625 (with the till bonus); 100.00 back takes 104.
    assert_eq!(back.points_reversed, 104);
    let ann = server.member("ann").await;
    // 625 - 104 + 200 (referral) + 40 - 100.
    assert_eq!(ann.points_balance, 661);
    assert_eq!(ann.lifetime_value_minor, 50_000);

    // The same day again: every event is a duplicate, nothing moves.
    let again = send(&server.channel, day(&server)).await;
    let duplicates = again
        .iter()
        .filter(|o| match &o.outcome {
            Some(Outcome::Purchase(r)) => r.duplicate,
            Some(Outcome::Return(r)) => r.duplicate,
            Some(Outcome::Activity(r)) => r.duplicate,
            Some(Outcome::Adjustment(r)) => r.duplicate,
            Some(Outcome::Redemption(r)) => r.duplicate,
            _ => false,
        })
        .count();
    assert_eq!(duplicates, 5);
    assert_eq!(server.member("ann").await.points_balance, 661);
}

#[tokio::test]
async fn a_till_key_may_not_adjust_in_a_batch_and_an_empty_event_is_refused() {
    let till = "till-secret-0123456789abcdef";
    let keyring = Keyring::new(&[ApiKey {
        name: "till-42".into(),
        role: Role::Pos,
        sha256: hash_key(till),
    }])
    .expect("valid key");
    let server = TestServer::with_options(ServeOptions {
        keyring,
        ..ServeOptions::default()
    })
    .await;
    let mut events = day(&server);
    events.push(pb::Event { event: None });
    let mut request = Request::new(pb::RecordEventsRequest { events });
    let header = format!("Bearer {till}").parse().expect("ascii");
    request.metadata_mut().insert("authorization", header);
    let outcomes = IngestClient::new(server.channel.clone())
        .record_events(request)
        .await
        .expect("batch accepted")
        .into_inner()
        .outcomes;
    let shape = shape(&outcomes);
    assert_eq!(shape[4], ("error", Code::PermissionDenied as i32));
    assert_eq!(shape[5], ("redemption", 0), "the others went on");
    assert_eq!(shape[6], ("error", Code::InvalidArgument as i32));
}

/// Every refusal in a batch names its field, as a single call's message
/// does: a redemption above the balance names `points`, a reused
/// transaction id names `transaction_id`.
#[tokio::test]
async fn every_refusal_in_a_batch_names_its_field() {
    let mut server = TestServer::start().await;
    server.buy("ann", "p1", 1_000).await;
    let redeem = |txn: &str, points| {
        event(Kind::Redemption(pb::RedeemPointsRequest {
            member_id: "ann".into(),
            transaction_id: txn.into(),
            points,
            ..Default::default()
        }))
    };
    let outcomes = send(
        &server.channel,
        vec![redeem("r1", 1_000_000), redeem("p1", 5)],
    )
    .await;
    let fields: Vec<(i32, &str)> = outcomes
        .iter()
        .map(|o| match &o.outcome {
            Some(Outcome::Error(e)) => (e.code, e.field.as_str()),
            other => panic!("refused: {other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            (Code::FailedPrecondition as i32, "points"),
            (Code::AlreadyExists as i32, "transaction_id")
        ]
    );
}
