//! Unit tests of the service's write protocol, on a real store in a
//! temporary directory, without gRPC.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{
    Program, ProgramError,
    command::{Purchase, Redemption},
    input::{Amount, Basket, MemberId, Tags, Text, TransactionId},
};
use crate::{money::Currency, rules, store::Store};

/// A program on `rules_text` over a fresh store, with a clock the test moves.
struct Fixture {
    program: Program,
    clock: Arc<Mutex<DateTime<Utc>>>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(rules_text: &str) -> Self {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let rules = rules::load(&rules::Candidate::new("rules.yaml", rules_text)).expect("rules");
        let start = Utc
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("valid");
        let clock = Arc::new(Mutex::new(start));
        let time = Arc::clone(&clock);
        let program = Program::new(
            Store::open(dir.path()).expect("store"),
            Arc::new(rules),
            Arc::new(move || *time.lock().expect("clock")),
        );
        Self {
            program,
            clock,
            _dir: dir,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().expect("clock")
    }

    fn purchase(&self, member: &str, id: &str, amount: i64, at: DateTime<Utc>) -> Purchase {
        Purchase {
            member_id: MemberId::parse("member_id", member.into()).expect("id"),
            transaction_id: TransactionId::parse("transaction_id", id.into()).expect("id"),
            amount: Amount::parse("amount_minor", amount).expect("amount"),
            currency: Currency::parse("EUR").expect("EUR"),
            occurred_at: at,
            channel: Text::default(),
            store_id: Text::default(),
            tags: Tags::default(),
            lines: Basket::default(),
        }
    }
}

const EXPIRING: &str = "\
program: test
version: t1
currency: EUR
window: rolling 12 months
earning:
  points_per_unit: 1
points_expiry:
  months: 1
tiers:
  - id: member
";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

#[test]
fn a_retry_gets_the_original_effect_and_the_member_as_it_is_now() {
    let runtime = runtime();
    let f = Fixture::new(EXPIRING);
    let first = runtime
        .block_on(
            f.program
                .record_purchase(f.purchase("m", "p1", 5_000, f.now()), "till"),
        )
        .expect("recorded");
    runtime
        .block_on(
            f.program
                .record_purchase(f.purchase("m", "p2", 1_000, f.now()), "till"),
        )
        .expect("recorded");
    let retry = runtime
        .block_on(
            f.program
                .record_purchase(f.purchase("m", "p1", 5_000, f.now()), "other-till"),
        )
        .expect("answered");
    assert!(retry.duplicate);
    assert_eq!(retry.outcome.points, first.outcome.points);
    assert_eq!(retry.outcome.tier_changes, first.outcome.tier_changes);
    assert_eq!(
        retry.outcome.member.metrics.points_balance, 60,
        "now, after p2"
    );
    let other = runtime.block_on(
        f.program
            .record_purchase(f.purchase("m", "p1", 5_001, f.now()), "till"),
    );
    assert!(
        matches!(other, Err(ProgramError::AlreadyExists(_))),
        "{other:?}"
    );
}

#[test]
fn a_lapse_is_booked_on_the_receipt_of_the_purchase_that_earned_the_points() {
    let runtime = runtime();
    let f = Fixture::new(EXPIRING);
    let long_ago = f.now() - TimeDelta::days(40);
    runtime
        .block_on(
            f.program
                .record_purchase(f.purchase("m", "old", 10_000, long_ago), "till"),
        )
        .expect("recorded");
    runtime
        .block_on(
            f.program
                .record_purchase(f.purchase("m", "new", 10_000, f.now()), "till"),
        )
        .expect("recorded");
    let old = f
        .program
        .store
        .receipt("old")
        .expect("readable")
        .expect("kept");
    assert_eq!(old.purchase.map(|p| p.points_lapsed), Some(100));
    let new = f
        .program
        .store
        .receipt("new")
        .expect("readable")
        .expect("kept");
    assert_eq!(new.purchase.map(|p| p.points_lapsed), Some(0));
}

#[test]
fn writes_to_an_unknown_member_are_refused_naming_the_member_id() {
    let runtime = runtime();
    let f = Fixture::new(EXPIRING);
    let redemption = Redemption {
        member_id: MemberId::parse("member_id", "ghost".into()).expect("id"),
        transaction_id: TransactionId::parse("transaction_id", "x1".into()).expect("id"),
        points: Some(Amount::parse("points", 1).expect("points")),
        order_id: None,
        reward_id: None,
    };
    let refused = runtime.block_on(f.program.redeem_points(redemption, "till"));
    assert!(
        matches!(
            refused,
            Err(ProgramError::NotFound {
                field: "member_id",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        f.program.store.receipt("x1").expect("readable").is_none(),
        "nothing written"
    );
}

/// A sled directory is locked by the one process that opened it, so no
/// other node can put rules live there: a last recorded version that is
/// not the one in force (as a crash in mid-reload can leave) must not
/// flip the rules in force. Before, the follower put it live, logging
/// "rules put live by another node", and the next reload flipped it back.
#[tokio::test]
async fn a_node_alone_on_sled_never_follows_another_node() {
    let text = std::fs::read_to_string("rules/example.yaml").expect("example rules");
    let fixture = Fixture::new(&text);
    let program = &fixture.program;
    program.go_live().await.expect("recorded");
    let other = rules::load(&rules::Candidate::new(
        "other.yaml",
        text.replace("version: \"2026.1\"", "version: \"other\""),
    ))
    .expect("rules");
    let version = rules::RulesVersion::of(&other, fixture.now());
    program
        .store
        .write(move |writer| writer.record_rules_version(&version))
        .await
        .expect("written")
        .expect("recorded");
    let stop = tokio_util::sync::CancellationToken::new();
    let followed =
        tokio::time::timeout(super::RULES_POLL * 3, program.follow_rules(stop.clone())).await;
    assert!(followed.is_ok(), "on sled the follower returns at once");
    assert_eq!(program.rules().version, "2026.1");
}
