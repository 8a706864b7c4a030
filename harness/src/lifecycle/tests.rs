//! Exhaustive and property tests of the job and machine lifecycles.

use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

use super::job::{next, JobEvent, JobState, JobStateKind, Refusal, Resume};
use super::machine::{next_health, unavailable, Health, HealthEvent, HealthRefusal, MachineState};

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_700_000_000 + secs)
}

const TTL: Duration = Duration::seconds(30);

/// One state of each kind; leases held by "a" until t(100).
fn one_of_each() -> Vec<JobState> {
    vec![
        JobState::new(t(0)),
        JobState::Leased {
            machine: "m1".into(),
            owner: "a".into(),
            run: "r1".into(),
            until: t(100),
            attempt: 1,
        },
        JobState::Running {
            machine: "m1".into(),
            owner: "a".into(),
            run: "r1".into(),
            until: t(100),
            attempt: 1,
            started: t(10),
        },
        JobState::Finished {
            machine: "m1".into(),
            run: "r1".into(),
            at: t(50),
        },
        JobState::Failed {
            error: "bmc timeout".into(),
            attempt: 2,
            at: t(50),
        },
        JobState::Cancelled {
            reason: "by alice".into(),
            at: t(50),
        },
    ]
}

/// One event of each kind, sent by the holder "a".
fn events() -> Vec<JobEvent> {
    vec![
        JobEvent::Lease {
            machine: "m2".into(),
            owner: "b".into(),
            new_run: "r2".into(),
            ttl: TTL,
        },
        JobEvent::Start { owner: "a".into() },
        JobEvent::Heartbeat {
            owner: "a".into(),
            ttl: TTL,
        },
        JobEvent::RunEnded { owner: "a".into() },
        JobEvent::InfraFault {
            owner: "a".into(),
            error: "ssh dropped".into(),
            max_attempts: 3,
        },
        JobEvent::LeaseExpired,
        JobEvent::Cancel {
            reason: "by bob".into(),
        },
    ]
}

/// Every (state, event) pair at a time before the lease expires: the
/// resulting state kind, or None when refused. This table *is* the
/// lifecycle; a change to it is a change of behaviour.
#[test]
fn transition_table_is_exactly_this() {
    use JobStateKind::*;
    let expected: [[Option<JobStateKind>; 7]; 6] = [
        //  lease        start         heartbeat      run_ended       infra_fault   expired  cancel
        [Some(Leased), None, None, None, None, None, Some(Cancelled)], // queued
        [
            None,
            Some(Running),
            Some(Leased),
            None,
            Some(Queued),
            None,
            Some(Cancelled),
        ], // leased
        [
            None,
            None,
            Some(Running),
            Some(Finished),
            Some(Queued),
            None,
            Some(Cancelled),
        ], // running
        [None; 7],                                                     // finished
        [None; 7],                                                     // failed
        [None; 7],                                                     // cancelled
    ];
    for (i, state) in one_of_each().iter().enumerate() {
        for (j, event) in events().iter().enumerate() {
            let got = next(state, event, t(60)).ok().map(|s| s.kind());
            assert_eq!(
                got,
                expected[i][j],
                "{} + {} at t(60)",
                state.kind(),
                event.name()
            );
        }
    }
}

#[test]
fn terminal_states_refuse_everything_and_say_so() {
    for state in one_of_each().into_iter().filter(|s| s.kind().is_terminal()) {
        for event in events() {
            assert_eq!(
                next(&state, &event, t(1000)),
                Err(Refusal::Terminal {
                    state: state.kind()
                })
            );
        }
    }
}

#[test]
fn an_expired_lease_goes_back_to_the_queue_to_resume_its_run() {
    let running = &one_of_each()[2];
    // Not before its expiry.
    assert!(matches!(
        next(running, &JobEvent::LeaseExpired, t(99)),
        Err(Refusal::NotExpired { .. })
    ));
    let queued = next(running, &JobEvent::LeaseExpired, t(100)).expect("expired");
    let JobState::Queued {
        resume, attempt, ..
    } = &queued
    else {
        panic!("{queued:?}")
    };
    assert_eq!(
        resume.as_ref(),
        Some(&Resume {
            run: "r1".into(),
            machine: "m1".into()
        })
    );
    // The dead holder's attempt is given back.
    assert_eq!(*attempt, 0);
    // Leased again on the same machine: the same run continues.
    let lease = |machine: &str| JobEvent::Lease {
        machine: machine.into(),
        owner: "b".into(),
        new_run: "r2".into(),
        ttl: TTL,
    };
    match next(&queued, &lease("m1"), t(101)).expect("lease") {
        JobState::Leased { run, owner, .. } => {
            assert_eq!(run, "r1");
            assert_eq!(owner, "b");
        }
        s => panic!("{s:?}"),
    }
    // On another machine: a new run.
    match next(&queued, &lease("m9"), t(101)).expect("lease") {
        JobState::Leased { run, .. } => assert_eq!(run, "r2"),
        s => panic!("{s:?}"),
    }
}

#[test]
fn a_holder_whose_lease_expired_cannot_start_or_heartbeat() {
    let leased = &one_of_each()[1];
    assert!(matches!(
        next(leased, &JobEvent::Start { owner: "a".into() }, t(100)),
        Err(Refusal::Expired { .. })
    ));
    let hb = JobEvent::Heartbeat {
        owner: "a".into(),
        ttl: TTL,
    };
    assert!(matches!(
        next(leased, &hb, t(150)),
        Err(Refusal::Expired { .. })
    ));
    // Another daemon is refused whatever the time.
    let other = JobEvent::Start { owner: "z".into() };
    assert!(matches!(
        next(leased, &other, t(1)),
        Err(Refusal::NotOwner { .. })
    ));
}

#[test]
fn infrastructure_faults_requeue_until_the_attempts_are_used() {
    let fault = |max| JobEvent::InfraFault {
        owner: "a".into(),
        error: "bmc timeout".into(),
        max_attempts: max,
    };
    let running = &one_of_each()[2]; // attempt 1
    match next(running, &fault(2), t(60)).expect("requeue") {
        JobState::Queued {
            attempt,
            resume,
            last_error,
            avoid,
            ..
        } => {
            assert_eq!(attempt, 1);
            assert_eq!(resume, None, "another machine starts a new run");
            assert_eq!(last_error.as_deref(), Some("bmc timeout"));
            assert_eq!(avoid.as_deref(), Some("m1"), "the machine that failed it");
        }
        s => panic!("{s:?}"),
    }
    match next(running, &fault(1), t(60)).expect("fail") {
        JobState::Failed { error, attempt, .. } => {
            assert_eq!(error, "bmc timeout");
            assert_eq!(attempt, 1);
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn a_lease_needs_a_positive_time() {
    let e = JobEvent::Lease {
        machine: "m".into(),
        owner: "a".into(),
        new_run: "r".into(),
        ttl: Duration::ZERO,
    };
    assert!(matches!(
        next(&JobState::new(t(0)), &e, t(1)),
        Err(Refusal::BadTtl { .. })
    ));
}

#[test]
fn state_kinds_round_trip_through_their_names() {
    for k in JobStateKind::ALL {
        assert_eq!(JobStateKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(JobStateKind::parse("done"), None);
}

fn arb_event() -> impl Strategy<Value = JobEvent> {
    let owner = prop_oneof![Just("a".to_string()), Just("b".to_string())];
    let machine = prop_oneof![Just("m1".to_string()), Just("m2".to_string())];
    prop_oneof![
        (machine, owner.clone(), 1i64..60, 0u32..1000).prop_map(|(machine, owner, ttl, n)| {
            JobEvent::Lease {
                machine,
                owner,
                new_run: format!("r{n}"),
                ttl: Duration::seconds(ttl),
            }
        }),
        owner.clone().prop_map(|owner| JobEvent::Start { owner }),
        (owner.clone(), 1i64..60).prop_map(|(owner, ttl)| JobEvent::Heartbeat {
            owner,
            ttl: Duration::seconds(ttl)
        }),
        owner.clone().prop_map(|owner| JobEvent::RunEnded { owner }),
        (owner, 1u32..4).prop_map(|(owner, max_attempts)| JobEvent::InfraFault {
            owner,
            error: "fault".into(),
            max_attempts,
        }),
        Just(JobEvent::LeaseExpired),
        Just(JobEvent::Cancel {
            reason: "user".into()
        }),
    ]
}

proptest! {
    /// Any sequence of events at increasing times keeps the invariants:
    /// refusals leave the state unchanged (the caller keeps the old one),
    /// attempts never exceed the largest limit, a lease is always in the
    /// future when granted or extended, only the holder moves a leased job
    /// (except expiry and cancel), and terminal states absorb.
    #[test]
    fn sequences_keep_the_invariants(
        steps in proptest::collection::vec((arb_event(), 0i64..40), 1..60)
    ) {
        let mut state = JobState::new(t(0));
        let mut now = t(0);
        for (event, dt) in steps {
            now += Duration::seconds(dt);
            let before = state.clone();
            match next(&state, &event, now) {
                Ok(after) => {
                    prop_assert!(!before.kind().is_terminal());
                    prop_assert!(after.attempt() <= 3 + 1);
                    if let (JobEvent::Lease { .. } | JobEvent::Heartbeat { .. }, Some((_, until))) =
                        (&event, after.lease())
                    {
                        prop_assert!(until > now);
                    }
                    let by = match &event {
                        JobEvent::Start { owner }
                        | JobEvent::Heartbeat { owner, .. }
                        | JobEvent::RunEnded { owner }
                        | JobEvent::InfraFault { owner, .. } => Some(owner.as_str()),
                        _ => None,
                    };
                    if let (Some(by), Some((holder, _))) = (by, before.lease()) {
                        prop_assert_eq!(by, holder);
                    }
                    // A run keeps its id from lease to end.
                    if let (
                        JobState::Running { run: r1, .. } | JobState::Leased { run: r1, .. },
                        JobState::Running { run: r2, .. } | JobState::Finished { run: r2, .. },
                    ) = (&before, &after)
                    {
                        prop_assert_eq!(r1, r2);
                    }
                    state = after;
                }
                Err(Refusal::Terminal { state: k }) => prop_assert!(k.is_terminal()),
                Err(_) => prop_assert!(!before.kind().is_terminal()),
            }
        }
    }
}

#[test]
fn machine_health_lifecycle() {
    let good = Health::Good { since: t(0) };
    // A passing check keeps the original `since`.
    assert_eq!(
        next_health(&good, &HealthEvent::CheckPassed, t(5)),
        Ok(Health::Good { since: t(0) })
    );
    let bad = next_health(
        &good,
        &HealthEvent::CheckFailed {
            reason: "critical SEL entry".into(),
        },
        t(6),
    )
    .expect("bad");
    assert_eq!(bad.reason(), Some("critical SEL entry"));
    assert_eq!(bad.since(), t(6));
    // An infrastructure failure below the limit makes the health unknown
    // (checked again before the next job: a crashed machine is brought
    // back); at the limit, bad.
    let below = HealthEvent::InfraFailures {
        failures: 2,
        limit: 3,
        last_error: "ssh".into(),
    };
    assert_eq!(
        next_health(&good, &below, t(7)),
        Ok(Health::Unknown { since: t(7) })
    );
    let at = HealthEvent::InfraFailures {
        failures: 3,
        limit: 3,
        last_error: "bmc timeout".into(),
    };
    let h = next_health(&good, &at, t(8)).expect("bad");
    assert_eq!(h.name(), "bad");
    assert!(h.reason().is_some_and(|r| r.contains("bmc timeout")));
    // Maintenance only leaves through `off` (to unknown) or retirement.
    let m = next_health(
        &bad,
        &HealthEvent::MaintenanceOn {
            note: "DIMM swap".into(),
        },
        t(9),
    )
    .expect("maintenance");
    assert!(matches!(
        next_health(&m, &HealthEvent::CheckPassed, t(10)),
        Err(HealthRefusal::InMaintenance { .. })
    ));
    let u = next_health(&m, &HealthEvent::MaintenanceOff, t(11)).expect("off");
    assert_eq!(u.name(), "unknown");
    assert_eq!(
        next_health(&good, &HealthEvent::MaintenanceOff, t(12)),
        Err(HealthRefusal::NotInMaintenance)
    );
    let r = next_health(&u, &HealthEvent::Retire, t(13)).expect("retire");
    assert_eq!(
        next_health(&r, &HealthEvent::CheckPassed, t(14)),
        Err(HealthRefusal::Retired)
    );
}

#[test]
fn only_idle_good_machines_take_jobs_and_others_say_why() {
    let good = Health::Good { since: t(0) };
    assert_eq!(unavailable(&MachineState::Idle, &good), None);
    let busy = MachineState::Running {
        job: "j1".into(),
        run: "r1".into(),
    };
    assert_eq!(
        unavailable(&busy, &good).map(|u| u.to_string()),
        Some("busy with job j1".into())
    );
    let unknown = Health::Unknown { since: t(0) };
    assert!(unavailable(&MachineState::Idle, &unknown)
        .is_some_and(|u| u.to_string().contains("health check")));
    let bad = Health::Bad {
        reason: "3 consecutive infrastructure failures".into(),
        since: t(0),
    };
    assert!(unavailable(&MachineState::Idle, &bad)
        .is_some_and(|u| u.to_string().contains("3 consecutive")));
}

mod scheduling {
    use super::super::machine::{Health, MachineState};
    use super::super::requirements::{
        schedule, Candidate, MachineFacts, QueuedJob, RequirementError, Requirements,
    };
    use super::t;

    fn machine(name: &str, arch: &str, family: &str, tags: &[&str]) -> Candidate {
        Candidate {
            facts: MachineFacts {
                name: name.into(),
                arch: arch.into(),
                family: Some(family.into()),
                pool: Some("rack1".into()),
                tags: tags.iter().map(|s| s.to_string()).collect(),
            },
            state: MachineState::Idle,
            health: Health::Good { since: t(0) },
        }
    }

    fn job(id: &str, req: &str, priority: u8, submitter: &str, age: u32) -> QueuedJob {
        QueuedJob {
            id: id.into(),
            requirements: Requirements::parse(req).expect("requirements"),
            priority,
            submitter: submitter.into(),
            age_key: format!("{age:06}"),
            avoid: None,
        }
    }

    #[test]
    fn requirements_parse_and_refuse_what_they_cannot_read() {
        let r = Requirements::parse("arch=aarch64, family=kunpeng,tag=gpu,tag=nvme").expect("ok");
        assert_eq!(r.arch.as_deref(), Some("aarch64"));
        assert_eq!(r.tags, vec!["gpu".to_string(), "nvme".to_string()]);
        assert_eq!(
            r.to_string(),
            "arch=aarch64,family=kunpeng,tag=gpu,tag=nvme"
        );
        assert_eq!(
            Requirements::parse("cpu=arm"),
            Err(RequirementError::UnknownKey { key: "cpu".into() })
        );
        assert!(matches!(
            Requirements::parse("arch=x86_64,arch=aarch64"),
            Err(RequirementError::Twice { .. })
        ));
        assert!(matches!(
            Requirements::parse("arch"),
            Err(RequirementError::NotKeyValue(_))
        ));
        assert!(matches!(
            Requirements::parse("pool="),
            Err(RequirementError::Empty { .. })
        ));
    }

    #[test]
    fn jobs_go_to_matching_machines_by_priority_then_fairness_then_age() {
        let machines = vec![
            machine("kp1", "aarch64", "kunpeng", &["gpu"]),
            machine("hy1", "x86_64", "hygon", &[]),
            machine("hy2", "x86_64", "hygon", &[]),
        ];
        let jobs = vec![
            // alice submitted three x86 jobs first, bob one later: fairness
            // gives bob the second x86 machine.
            job("a1", "arch=x86_64", 50, "alice", 1),
            job("a2", "arch=x86_64", 50, "alice", 2),
            job("a3", "arch=x86_64", 50, "alice", 3),
            job("b1", "arch=x86_64", 50, "bob", 4),
            // higher priority goes first, whatever its age
            job("u1", "family=hygon", 90, "carol", 9),
            job("g1", "tag=gpu", 10, "dave", 5),
            job("r1", "arch=riscv64", 50, "erin", 0),
        ];
        let plan = schedule(&jobs, &machines);
        assert_eq!(
            plan.leases,
            vec![
                ("u1".to_string(), "hy1".to_string()),
                ("a1".to_string(), "hy2".to_string()),
                ("g1".to_string(), "kp1".to_string()),
            ]
        );
        // b1 ranks before a2/a3 (fairness): all three wait, for machines.
        for id in ["a2", "a3", "b1"] {
            assert!(
                plan.waiting[id].starts_with("all 2 matching machine(s) unavailable"),
                "{id}: {}",
                plan.waiting[id]
            );
        }
        assert!(plan.waiting["r1"].contains("no machine in the lab matches arch=riscv64"));
    }

    #[test]
    fn a_requeued_job_avoids_the_machine_that_failed_it_while_another_can_serve() {
        let failed = |avoid: &str| QueuedJob {
            avoid: Some(avoid.into()),
            ..job("j", "arch=x86_64", 50, "alice", 1)
        };
        let mut busy = machine("hy2", "x86_64", "hygon", &[]);
        busy.state = MachineState::Running {
            job: "other".into(),
            run: "r".into(),
        };
        // Both idle: the other one.
        let machines = vec![
            machine("hy1", "x86_64", "hygon", &[]),
            machine("hy2", "x86_64", "hygon", &[]),
        ];
        let plan = schedule(&[failed("hy1")], &machines);
        assert_eq!(plan.leases, vec![("j".to_string(), "hy2".to_string())]);
        // The other one busy: the job waits for it, saying why.
        let machines = vec![machine("hy1", "x86_64", "hygon", &[]), busy.clone()];
        let plan = schedule(&[failed("hy1")], &machines);
        assert!(plan.leases.is_empty(), "{plan:?}");
        assert!(
            plan.waiting["j"].starts_with(
                "hy1 avoided (its infrastructure failed the previous attempt); all 1 matching"
            ),
            "{}",
            plan.waiting["j"]
        );
        // The other one out of service (or absent): the avoided one serves.
        busy.health = Health::Bad {
            reason: "BMC gone".into(),
            since: t(0),
        };
        let machines = vec![machine("hy1", "x86_64", "hygon", &[]), busy];
        let plan = schedule(&[failed("hy1")], &machines);
        assert_eq!(plan.leases, vec![("j".to_string(), "hy1".to_string())]);
        let plan = schedule(&[failed("hy1")], &machines[..1]);
        assert_eq!(plan.leases, vec![("j".to_string(), "hy1".to_string())]);
        // A machine that does not match the requirements does not count.
        let machines = vec![
            machine("hy1", "x86_64", "hygon", &[]),
            machine("kp1", "aarch64", "kunpeng", &[]),
        ];
        let plan = schedule(&[failed("hy1")], &machines);
        assert_eq!(plan.leases, vec![("j".to_string(), "hy1".to_string())]);
    }

    #[test]
    fn fairness_orders_each_submitters_oldest_first() {
        let machines = vec![
            machine("m1", "x86_64", "intel", &[]),
            machine("m2", "x86_64", "intel", &[]),
        ];
        let jobs = vec![
            job("a1", "", 50, "alice", 1),
            job("a2", "", 50, "alice", 2),
            job("b1", "", 50, "bob", 3),
        ];
        let plan = schedule(&jobs, &machines);
        let got: Vec<&str> = plan.leases.iter().map(|(j, _)| j.as_str()).collect();
        assert_eq!(got, vec!["a1", "b1"]);
    }

    #[test]
    fn unavailable_machines_are_named_in_the_waiting_reason() {
        let mut m = machine("kp1", "aarch64", "kunpeng", &[]);
        m.health = Health::Maintenance {
            note: "DIMM swap".into(),
            since: t(0),
        };
        let plan = schedule(&[job("j", "family=kunpeng", 50, "a", 1)], &[m]);
        assert!(plan.leases.is_empty());
        assert_eq!(
            plan.waiting["j"],
            "all 1 matching machine(s) unavailable; first: kp1: in maintenance: DIMM swap"
        );
    }
}
