//! A submission's review states and the pure function that moves between them.
//!
//! `submitted → in_review → changes_requested | approved | rejected`, and
//! `approved → revoked`. Approval publishes a certification and revocation
//! withdraws it: the [`Transition`] says so, and the store carries it out in
//! the same transaction as the state change.

use serde::{Deserialize, Serialize};

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionState {
    /// Verified and stored; no reviewer has taken it yet.
    Submitted,
    /// A reviewer is looking at it.
    InReview,
    /// The vendor is asked to submit again (a new bundle).
    ChangesRequested,
    /// Certified: its certification is published.
    Approved,
    /// Not certified.
    Rejected,
    /// Was certified; its certification is withdrawn.
    Revoked,
}

pub const ALL_STATES: [SubmissionState; 6] = [
    SubmissionState::Submitted,
    SubmissionState::InReview,
    SubmissionState::ChangesRequested,
    SubmissionState::Approved,
    SubmissionState::Rejected,
    SubmissionState::Revoked,
];

impl SubmissionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionState::Submitted => "submitted",
            SubmissionState::InReview => "in_review",
            SubmissionState::ChangesRequested => "changes_requested",
            SubmissionState::Approved => "approved",
            SubmissionState::Rejected => "rejected",
            SubmissionState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<SubmissionState> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// No action leaves this state.
    pub fn is_final(self) -> bool {
        ALL_ACTIONS.iter().all(|a| next(self, *a).is_err())
    }
}

impl std::fmt::Display for SubmissionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reviewer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    Start,
    RequestChanges,
    Approve,
    Reject,
    Revoke,
}

pub const ALL_ACTIONS: [ReviewAction; 5] = [
    ReviewAction::Start,
    ReviewAction::RequestChanges,
    ReviewAction::Approve,
    ReviewAction::Reject,
    ReviewAction::Revoke,
];

impl ReviewAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Start => "start",
            ReviewAction::RequestChanges => "request_changes",
            ReviewAction::Approve => "approve",
            ReviewAction::Reject => "reject",
            ReviewAction::Revoke => "revoke",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewAction> {
        ALL_ACTIONS.into_iter().find(|a| a.as_str() == s)
    }
}

/// What happens to the submission's certification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificationEffect {
    Publish,
    Revoke,
}

/// An allowed step: the new state and what it does to the certification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: SubmissionState,
    pub certification: Option<CertificationEffect>,
}

/// A step that is not allowed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a submission that is {state}: {reason}", action.as_str().replace('_', " "))]
pub struct Refusal {
    pub state: SubmissionState,
    pub action: ReviewAction,
    pub reason: &'static str,
}

/// The next state of a submission in `state` after `action`.
pub fn next(state: SubmissionState, action: ReviewAction) -> Result<Transition, Refusal> {
    use ReviewAction as A;
    use SubmissionState as S;
    let to = |to| {
        Ok(Transition {
            to,
            certification: None,
        })
    };
    let refuse = |reason| {
        Err(Refusal {
            state,
            action,
            reason,
        })
    };
    match (state, action) {
        (S::Submitted, A::Start) => to(S::InReview),
        (S::InReview, A::RequestChanges) => to(S::ChangesRequested),
        (S::InReview, A::Reject) => to(S::Rejected),
        (S::InReview, A::Approve) => Ok(Transition {
            to: S::Approved,
            certification: Some(CertificationEffect::Publish),
        }),
        (S::Approved, A::Revoke) => Ok(Transition {
            to: S::Revoked,
            certification: Some(CertificationEffect::Revoke),
        }),
        (S::Submitted, _) => refuse("a review must be started first"),
        (S::InReview, A::Start) => refuse("its review has started already"),
        (S::InReview, A::Revoke) => refuse("only an approved submission can be revoked"),
        (S::ChangesRequested, _) => {
            refuse("changes were requested: the vendor submits a new bundle")
        }
        (S::Approved, _) => refuse("it is approved: it can only be revoked"),
        (S::Rejected, _) => refuse("it was rejected"),
        (S::Revoked, _) => refuse("it was revoked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The whole table: every (state, action) pair and its outcome.
    #[test]
    fn the_transition_table() {
        use ReviewAction as A;
        use SubmissionState as S;
        let allowed = [
            (S::Submitted, A::Start, S::InReview),
            (S::InReview, A::RequestChanges, S::ChangesRequested),
            (S::InReview, A::Approve, S::Approved),
            (S::InReview, A::Reject, S::Rejected),
            (S::Approved, A::Revoke, S::Revoked),
        ];
        for state in ALL_STATES {
            for action in ALL_ACTIONS {
                let want = allowed
                    .iter()
                    .find(|(s, a, _)| *s == state && *a == action)
                    .map(|(_, _, to)| *to);
                match (next(state, action), want) {
                    (Ok(t), Some(to)) => assert_eq!(t.to, to, "{state} {action:?}"),
                    (Err(r), None) => {
                        assert_eq!((r.state, r.action), (state, action));
                        assert!(!r.reason.is_empty());
                    }
                    (got, want) => panic!("{state} {action:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(
            next(S::InReview, A::Approve).unwrap().certification,
            Some(CertificationEffect::Publish)
        );
        assert_eq!(
            next(S::Approved, A::Revoke).unwrap().certification,
            Some(CertificationEffect::Revoke)
        );
        let finals: Vec<S> = ALL_STATES.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [S::ChangesRequested, S::Rejected, S::Revoked]);
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(SubmissionState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for a in ALL_ACTIONS {
            assert_eq!(ReviewAction::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(ReviewAction::parse("approve "), None);
    }

    proptest! {
        /// Along any sequence of actions: a certification is published at
        /// most once, only on the way to `approved`, and revoked only after
        /// it was published; a refused action changes nothing; once a final
        /// state is reached nothing moves.
        #[test]
        fn any_sequence_keeps_the_invariants(actions in proptest::collection::vec(0usize..5, 0..40)) {
            let mut state = SubmissionState::Submitted;
            let mut published = 0;
            let mut revoked = 0;
            for i in actions {
                let action = ALL_ACTIONS[i];
                let was_final = state.is_final();
                match next(state, action) {
                    Ok(t) => {
                        prop_assert!(!was_final, "{state} is final but {action:?} moved it");
                        match t.certification {
                            Some(CertificationEffect::Publish) => {
                                prop_assert_eq!(t.to, SubmissionState::Approved);
                                published += 1;
                            }
                            Some(CertificationEffect::Revoke) => {
                                prop_assert_eq!(published, 1);
                                prop_assert_eq!(t.to, SubmissionState::Revoked);
                                revoked += 1;
                            }
                            None => prop_assert!(t.to != SubmissionState::Approved),
                        }
                        state = t.to;
                    }
                    Err(r) => prop_assert_eq!(r.state, state),
                }
                prop_assert!(published <= 1 && revoked <= published);
                prop_assert_eq!(state == SubmissionState::Approved, published == 1 && revoked == 0);
            }
        }
    }
}
