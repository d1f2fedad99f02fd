//! Crash safety: kill -9 at a random moment under concurrent load
//! (purchases, returns, redemptions, accounts closed, with or without
//! their points, and reopened, a second enrolment merged into each member
//! and a third enrolment erased every cycle), retry every request whose
//! answer was not
//! seen, and check that nothing answered was lost and nothing counted
//! twice. On sled the retries go to the node
//! restarted on the same data directory; on PostgreSQL (the copy under
//! `postgres::`) to a second node that served on the same database all
//! along: the crash test across nodes.
//!
//! `TIERD_CRASH_LOOPS` sets the number of kill points (default 3; a longer
//! soak: `TIERD_CRASH_LOOPS=200 cargo test --release --test it crash`),
//! `TIERD_CRASH_SEED` replays a run (the seed is printed).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tempfile::TempDir;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    harness::new_store,
    process::{Served, crash, serve_on, shipped_rules, terminate},
};
use tierd::grpc::{
    convert::timestamp,
    pb::{self, loyalty_client::LoyaltyClient},
};
use tierd::{store::Location, tools::seed::Rng};

const MEMBERS: usize = 6;

/// One request as sent, so that a retry resends exactly the same payload.
#[derive(Clone, Debug)]
enum Sent {
    Purchase(pb::RecordPurchaseRequest),
    Return(pb::RecordReturnRequest),
    Redeem(pb::RedeemPointsRequest),
    Close(pb::CloseMemberRequest),
    Reopen(pb::ReopenMemberRequest),
    Merge(pb::MergeMembersRequest),
    Erase(pb::EraseMemberRequest),
}

/// What the server answered, reduced to what the ledger must add up to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// Recorded: spend change and points change it caused.
    Recorded {
        spend: i64,
        points: i64,
        duplicate: bool,
    },
    /// Erased: the member is known by `pseudonym` from then on.
    Erased { pseudonym: String, duplicate: bool },
    /// Refused with FAILED_PRECONDITION (a redemption above the balance,
    /// anything that earns or redeems on a closed account, closing a
    /// closed one, reopening an open one).
    Refused,
}

/// Sends one request; `None` when the answer was lost (the server died).
async fn send(client: &mut LoyaltyClient<Channel>, request: &Sent) -> Option<Answer> {
    let answer = match request.clone() {
        Sent::Purchase(r) => client.record_purchase(r.clone()).await.map(|a| {
            let a = a.into_inner();
            Answer::Recorded {
                spend: r.amount_minor,
                points: a.points_earned,
                duplicate: a.duplicate,
            }
        }),
        Sent::Return(r) => client.record_return(r.clone()).await.map(|a| {
            let a = a.into_inner();
            Answer::Recorded {
                spend: -r.amount_minor,
                points: -a.points_reversed,
                duplicate: a.duplicate,
            }
        }),
        Sent::Redeem(r) => client
            .redeem_points(r.clone())
            .await
            .map(|a| Answer::Recorded {
                spend: 0,
                points: -r.points,
                duplicate: a.into_inner().duplicate,
            }),
        Sent::Close(r) => client.close_member(r).await.map(|a| {
            let a = a.into_inner();
            Answer::Recorded {
                spend: 0,
                points: -a.points_forfeited,
                duplicate: a.duplicate,
            }
        }),
        Sent::Reopen(r) => client.reopen_member(r).await.map(|a| Answer::Recorded {
            spend: 0,
            points: 0,
            duplicate: a.into_inner().duplicate,
        }),
        // Moves figures between members, adds none: the ledger moves the
        // source's totals to the target once the merge is recorded.
        Sent::Merge(r) => client.merge_members(r).await.map(|a| Answer::Recorded {
            spend: 0,
            points: 0,
            duplicate: a.into_inner().duplicate,
        }),
        Sent::Erase(r) => client.erase_member(r).await.map(|a| {
            let a = a.into_inner();
            Answer::Erased {
                pseudonym: a.pseudonym,
                duplicate: a.duplicate,
            }
        }),
    };
    match answer {
        Ok(answer) => Some(answer),
        Err(status) if status.code() == Code::FailedPrecondition => Some(Answer::Refused),
        Err(status) => {
            assert!(
                matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
                ),
                "only a dead server may leave a request unanswered: {status:?}"
            );
            None
        }
    }
}

/// Everything the client knows about one member's requests.
#[derive(Default)]
struct Book {
    answered: Vec<(Sent, Answer)>,
    unanswered: Vec<Sent>,
    /// Purchases answered and not yet returned: (transaction id, amount).
    returnable: Vec<(String, i64)>,
}

/// The first steps of a member's stream (dice, see [`drive_member`]): a
/// purchase, then the account paths (close and reopen; a second id
/// enrolled and merged in; a third enrolled and erased), each pair first
/// for a third of the members, so that every cycle takes them all however
/// few steps a loaded machine fits before the kill.
fn prelude(member_index: usize, cycle: u32) -> [u64; 7] {
    match (member_index + cycle as usize) % 3 {
        0 => [0, 10, 11, 12, 13, 14, 15],
        1 => [0, 12, 13, 14, 15, 10, 11],
        _ => [0, 14, 15, 10, 11, 12, 13],
    }
}

/// One member's stream of requests, in order, until the server dies;
/// every answer counted in `answers`.
async fn drive_member(
    mut client: LoyaltyClient<Channel>,
    (member, member_index): (String, usize),
    mut rng: Rng,
    cycle: u32,
    answers: Arc<AtomicUsize>,
) -> Book {
    let mut book = Book::default();
    for step in 0.. {
        let txn = format!("{member}-c{cycle}-s{step}");
        // A member exists from its first purchase: the prelude starts
        // with one.
        let dice = prelude(member_index, cycle)
            .get(step)
            .copied()
            .unwrap_or_else(|| rng.below(12));
        let second = format!("{member}-second-c{cycle}");
        let third = format!("{member}-third-c{cycle}");
        let request = match dice {
            0..=5 | 12 | 14 => Sent::Purchase(pb::RecordPurchaseRequest {
                member_id: match dice {
                    12 => &second,
                    14 => &third,
                    _ => &member,
                }
                .clone(),
                transaction_id: txn,
                amount_minor: 500 + i64::try_from(rng.below(30_000)).unwrap_or(0),
                currency: "EUR".into(),
                occurred_at: Some(timestamp(chrono::Utc::now())),
                channel: if rng.below(2) == 0 { "pos" } else { "web" }.into(),
                store_id: "s1".into(),
                tags: vec![],
                lines: Vec::new(),
            }),
            6 | 7 if !book.returnable.is_empty() => {
                let index = usize::try_from(rng.below(book.returnable.len() as u64)).unwrap_or(0);
                let (original, amount) = book.returnable.swap_remove(index);
                Sent::Return(pb::RecordReturnRequest {
                    member_id: member.clone(),
                    transaction_id: txn,
                    original_transaction_id: original,
                    amount_minor: (amount / 3).max(1),
                    occurred_at: Some(timestamp(chrono::Utc::now())),
                    currency: String::new(),
                    lines: Vec::new(),
                })
            }
            10 => Sent::Close(pb::CloseMemberRequest {
                member_id: member.clone(),
                transaction_id: txn,
                reason: "crash test".into(),
                forfeit_points: rng.below(2) == 0,
            }),
            11 => Sent::Reopen(pb::ReopenMemberRequest {
                member_id: member.clone(),
                transaction_id: txn,
                reason: "crash test".into(),
            }),
            13 => Sent::Merge(pb::MergeMembersRequest {
                source_member_id: second,
                target_member_id: member.clone(),
                transaction_id: txn,
                reason: "crash test".into(),
            }),
            15 => Sent::Erase(pb::EraseMemberRequest {
                member_id: third,
                transaction_id: txn,
                reason: "crash test".into(),
            }),
            _ => Sent::Redeem(pb::RedeemPointsRequest {
                member_id: member.clone(),
                transaction_id: txn,
                points: 1 + i64::try_from(rng.below(150)).unwrap_or(0),
                order_id: String::new(),
                reward_id: String::new(),
            }),
        };
        match send(&mut client, &request).await {
            Some(answer) => {
                answers.fetch_add(1, Ordering::Relaxed);
                // Only the member's own purchases are returned later (the
                // second id's may not have merged, the third's are erased).
                if let (Sent::Purchase(p), Answer::Recorded { .. }) = (&request, &answer)
                    && p.member_id == member
                {
                    book.returnable
                        .push((p.transaction_id.clone(), p.amount_minor));
                }
                book.answered.push((request, answer));
            }
            None => {
                book.unanswered.push(request);
                return book;
            }
        }
    }
    book
}

/// Expected totals of one member, built from the answers.
#[derive(Default, Debug, PartialEq, Eq)]
struct Totals {
    lifetime_value: i64,
    points: i64,
    transactions: BTreeSet<String>,
}

fn transaction_id(sent: &Sent) -> &str {
    match sent {
        Sent::Purchase(r) => &r.transaction_id,
        Sent::Return(r) => &r.transaction_id,
        Sent::Redeem(r) => &r.transaction_id,
        Sent::Close(r) => &r.transaction_id,
        Sent::Reopen(r) => &r.transaction_id,
        Sent::Merge(r) => &r.transaction_id,
        Sent::Erase(r) => &r.transaction_id,
    }
}

/// The member a request names (for a merge, the member that remains).
fn member_named(sent: &Sent) -> &str {
    match sent {
        Sent::Purchase(r) => &r.member_id,
        Sent::Return(r) => &r.member_id,
        Sent::Redeem(r) => &r.member_id,
        Sent::Close(r) => &r.member_id,
        Sent::Reopen(r) => &r.member_id,
        Sent::Merge(r) => &r.target_member_id,
        Sent::Erase(r) => &r.member_id,
    }
}

fn seed() -> u64 {
    std::env::var("TIERD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(88_172_645_463_325_252, |d| d.as_nanos() as u64)
                | 1
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_answered_and_counts_nothing_twice() {
    let loops: u32 = std::env::var("TIERD_CRASH_LOOPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed = seed();
    println!("crash test: {loops} kill points, TIERD_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = TempDir::new().expect("temp dir");
    let store = new_store(dir.path());
    let across_nodes = matches!(store, Location::Postgres(_));
    let serve = || serve_on(&store, shipped_rules(), &[]);
    // On a database, the node that takes the retries runs throughout.
    let survivor = across_nodes.then(serve);
    let members: Vec<String> = (0..MEMBERS).map(|m| format!("crash-member-{m}")).collect();
    let mut expected: BTreeMap<String, Totals> = BTreeMap::new();
    // Accounts closed, reopened and merged that the answers counted: the
    // load must have taken those paths too.
    let mut account_changes = (0, 0, 0, 0);
    // Every id a request named, merged away or not: their histories
    // together are every entry written.
    let mut named: BTreeSet<String> = BTreeSet::new();

    for cycle in 0..loops {
        let served = serve();
        let channel = served.channel().await;
        let answers = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = members
            .iter()
            .enumerate()
            .map(|(index, member)| {
                let worker_rng = Rng::new(rng.next_u64());
                tokio::spawn(drive_member(
                    LoyaltyClient::new(channel.clone()),
                    (member.clone(), index),
                    worker_rng,
                    cycle,
                    Arc::clone(&answers),
                ))
            })
            .collect();
        // Kill at a random moment: once 20 to 200 requests were answered
        // (a number, not a time, so that a slow machine gets as far into
        // the load as a fast one), then 0 to 20 ms later; at most 10 s in.
        let kill_after = 20 + usize::try_from(rng.below(180)).unwrap_or(0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while answers.load(Ordering::Relaxed) < kill_after && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
        let killer = tokio::task::spawn_blocking(move || crash(served));
        let mut books = Vec::new();
        for (member, worker) in members.iter().zip(workers) {
            books.push((member.clone(), worker.await.expect("worker")));
        }
        killer.await.expect("killed");

        let restarted = survivor.is_none().then(serve);
        let node = survivor.as_ref().or(restarted.as_ref()).expect("a node");
        let channel = node.channel().await;
        let mut client = LoyaltyClient::new(channel.clone());
        let health = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: "loyalty.v1.Loyalty".into(),
            })
            .await
            .expect("health answers")
            .into_inner();
        assert_eq!(health.status(), ServingStatus::Serving);

        for (_, book) in &mut books {
            // Retry what was never answered: now it must be.
            for request in std::mem::take(&mut book.unanswered) {
                let answer = send(&mut client, &request)
                    .await
                    .expect("answered after restart");
                book.answered.push((request, answer));
            }
            // Every answered request, sent again, is a duplicate with the same effect.
            // A refused redemption recorded nothing and stays refused as far
            // as the books go; resending it could now succeed, so it is not.
            // The ids erased: their earlier requests now name nobody, so
            // they are counted as answered, not sent again.
            let erased: BTreeSet<&str> = book
                .answered
                .iter()
                .filter_map(|(request, answer)| match (request, answer) {
                    (Sent::Erase(erase), Answer::Erased { .. }) => Some(erase.member_id.as_str()),
                    _ => None,
                })
                .collect();
            for (request, answer) in &book.answered {
                if let (Sent::Erase(erase), Answer::Erased { pseudonym, .. }) = (request, answer) {
                    let again = send(&mut client, request).await.expect("answered");
                    assert_eq!(
                        again,
                        Answer::Erased {
                            pseudonym: pseudonym.clone(),
                            duplicate: true
                        },
                        "{request:?} was recorded, so a resend is a duplicate"
                    );
                    account_changes.3 += 1;
                    // The ledger and the history go on under the pseudonym.
                    named.remove(&erase.member_id);
                    named.insert(pseudonym.clone());
                    let moved = expected.remove(&erase.member_id).unwrap_or_default();
                    expected.insert(pseudonym.clone(), moved);
                    continue;
                }
                let Answer::Recorded { spend, points, .. } = *answer else {
                    continue;
                };
                if erased.contains(member_named(request)) {
                    named.insert(member_named(request).to_owned());
                    let totals = expected
                        .entry(member_named(request).to_owned())
                        .or_default();
                    totals.lifetime_value += spend;
                    totals.points += points;
                    continue;
                }
                let again = send(&mut client, request).await.expect("answered");
                let Answer::Recorded {
                    spend: spend_again,
                    points: points_again,
                    duplicate,
                } = again
                else {
                    panic!("{request:?} was recorded, then refused");
                };
                assert!(
                    duplicate,
                    "{request:?} was recorded, so a resend is a duplicate"
                );
                assert_eq!((spend, points), (spend_again, points_again), "{request:?}");
                named.insert(member_named(request).to_owned());
                let totals = expected
                    .entry(member_named(request).to_owned())
                    .or_default();
                assert!(
                    totals
                        .transactions
                        .insert(transaction_id(request).to_owned()),
                    "{request:?} counted twice"
                );
                totals.lifetime_value += spend;
                totals.points += points;
                match request {
                    Sent::Close(_) => account_changes.0 += 1,
                    Sent::Reopen(_) => account_changes.1 += 1,
                    Sent::Merge(merge) => {
                        account_changes.2 += 1;
                        let source = &merge.source_member_id;
                        named.insert(source.clone());
                        let moved = expected.remove(source).unwrap_or_default();
                        let totals = expected.entry(merge.target_member_id.clone()).or_default();
                        totals.lifetime_value += moved.lifetime_value;
                        totals.points += moved.points;
                        totals.transactions.extend(moved.transactions);
                    }
                    _ => {}
                }
            }
        }

        for (member, totals) in &expected {
            let state = client
                .get_member(pb::GetMemberRequest {
                    member_id: member.clone(),
                })
                .await
                .expect("member")
                .into_inner();
            assert_eq!(
                state.lifetime_value_minor, totals.lifetime_value,
                "{member}: LTV = net spend"
            );
            assert_eq!(
                state.points_balance, totals.points,
                "{member}: balance = sum of its ledger"
            );
        }
        let mut seqs = Vec::new();
        for member in &named {
            let mut token = String::new();
            loop {
                let page = client
                    .get_tier_history(pb::GetTierHistoryRequest {
                        member_id: member.clone(),
                        page_size: 1000,
                        page_token: token,
                    })
                    .await
                    .expect("history")
                    .into_inner();
                seqs.extend(page.entries.iter().map(|e| e.seq));
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
        let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
        assert_eq!(distinct.len(), seqs.len(), "no history seq twice");
        if !across_nodes {
            let gap_free: BTreeSet<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(
                distinct, gap_free,
                "sled numbers history 1..=n without gaps"
            );
        }
        drop(client);
        if let Some(restarted) = restarted {
            stop(restarted).await;
        }
    }
    if let Some(survivor) = survivor {
        stop(survivor).await;
    }
    assert!(
        account_changes.0 > 0
            && account_changes.1 > 0
            && account_changes.2 > 0
            && account_changes.3 > 0,
        "accounts were closed, reopened, merged and erased under load: {account_changes:?}"
    );
}

/// Stops a node with SIGTERM; it must exit cleanly.
async fn stop(node: Served) {
    let status = tokio::task::spawn_blocking(move || terminate(node))
        .await
        .expect("stopped");
    assert!(status.success());
}
