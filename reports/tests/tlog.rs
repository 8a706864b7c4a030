//! The transparency log catches every kind of rewrite and names the entry.

use certlab_reports::tlog::{
    consistency_proof, inclusion_proof, parse_hash, verify_consistency, verify_inclusion,
    verify_log, LogEntry, TlogError, TreeHead, GENESIS_PREV,
};
use certlab_reports::SigningKeyPair;
use serde_json::json;

fn build(n: usize) -> Vec<LogEntry> {
    let mut entries: Vec<LogEntry> = Vec::new();
    for i in 0..n {
        let (subject, event) = match i % 3 {
            0 => (format!("submission/{i}"), "submitted"),
            1 => (format!("submission/{}", i - 1), "in_review"),
            _ => (format!("certification/{i}"), "approved"),
        };
        let entry = LogEntry::next(
            entries.last(),
            &format!("2026-12-06T10:{:02}:00Z", i % 60),
            &subject,
            event,
            "reviewer@example.org",
            json!({"state": event, "bundle_sha256": format!("{i:064x}"), "comment": "ok"}),
        );
        entries.push(entry);
    }
    entries
}

fn head(entries: &[LogEntry], key: &SigningKeyPair) -> TreeHead {
    let leaves: Vec<_> = entries.iter().map(LogEntry::leaf_hash).collect();
    TreeHead::sign(&leaves, "2026-12-06T11:00:00Z", key.signing_key())
}

#[test]
fn an_untouched_log_verifies() {
    let key = SigningKeyPair::generate();
    let entries = build(50);
    assert_eq!(entries[0].prev, GENESIS_PREV);
    let head = head(&entries, &key);
    assert_eq!(head.size, 50);
    verify_log(&entries, &head, &key.verifying_key()).unwrap();
}

#[test]
fn an_edited_entry_is_named() {
    let key = SigningKeyPair::generate();
    let entries = build(50);
    let head = head(&entries, &key);
    for victim in [0usize, 17, 48] {
        let mut edited = entries.clone();
        edited[victim].data["comment"] = json!("looks fine");
        match verify_log(&edited, &head, &key.verifying_key()) {
            Err(TlogError::Entry { index, .. }) => assert_eq!(index, victim as u64),
            other => panic!("edit of {victim}: {other:?}"),
        }
        // A changed event name is caught the same way.
        let mut edited = entries.clone();
        edited[victim].event = "rejected".into();
        assert!(matches!(
            verify_log(&edited, &head, &key.verifying_key()),
            Err(TlogError::Entry { index, .. }) if index == victim as u64
        ));
    }
}

#[test]
fn the_last_entry_edited_is_named_through_the_root() {
    let key = SigningKeyPair::generate();
    let entries = build(20);
    let head = head(&entries, &key);
    let mut edited = entries.clone();
    edited[19].actor = "someone-else@example.org".into();
    assert!(matches!(
        verify_log(&edited, &head, &key.verifying_key()),
        Err(TlogError::Entry { index: 19, .. })
    ));
}

#[test]
fn dropped_reordered_and_appended_entries_are_caught() {
    let key = SigningKeyPair::generate();
    let entries = build(30);
    let head = head(&entries, &key);
    let vk = key.verifying_key();

    let mut dropped = entries.clone();
    dropped.remove(10);
    assert!(matches!(
        verify_log(&dropped, &head, &vk),
        Err(TlogError::Entry { index: 10, .. })
    ));

    let mut swapped = entries.clone();
    swapped.swap(5, 6);
    assert!(verify_log(&swapped, &head, &vk).is_err());

    // An entry appended after the head was signed is not covered by it.
    let mut longer = entries.clone();
    let extra = LogEntry::next(
        longer.last(),
        "2026-12-06T12:00:00Z",
        "x",
        "y",
        "z",
        json!({}),
    );
    longer.push(extra);
    assert!(matches!(
        verify_log(&longer, &head, &vk),
        Err(TlogError::Head(_))
    ));

    // A log rewritten consistently from scratch needs a new head: the old
    // signed head does not cover it.
    let mut rewritten = build(30);
    rewritten[3].data["comment"] = json!("rewritten");
    let rechained: Vec<LogEntry> = rewritten.iter().fold(Vec::new(), |mut acc, e| {
        let next = LogEntry::next(
            acc.last(),
            &e.time,
            &e.subject,
            &e.event,
            &e.actor,
            e.data.clone(),
        );
        acc.push(next);
        acc
    });
    assert!(verify_log(&rechained, &head, &vk).is_err());
}

#[test]
fn a_head_signed_by_another_key_or_altered_is_refused() {
    let key = SigningKeyPair::generate();
    let other = SigningKeyPair::generate();
    let entries = build(8);
    let head = head(&entries, &key);
    assert!(matches!(
        verify_log(&entries, &head, &other.verifying_key()),
        Err(TlogError::Head(_))
    ));
    let mut altered = head.clone();
    altered.time = "2027-01-01T00:00:00Z".into();
    assert!(matches!(
        verify_log(&entries, &altered, &key.verifying_key()),
        Err(TlogError::Head(_))
    ));
}

#[test]
fn proofs_over_real_entries_check_against_the_signed_root() {
    let key = SigningKeyPair::generate();
    let entries = build(100);
    let leaves: Vec<_> = entries.iter().map(LogEntry::leaf_hash).collect();
    let head = head(&entries, &key);
    let root = parse_hash(&head.root).unwrap();
    for i in [0usize, 1, 63, 64, 99] {
        let path = inclusion_proof(&leaves, i).unwrap();
        assert!(path.len() <= 7, "log2(100) rounds up to 7");
        assert!(verify_inclusion(&leaves[i], i as u64, 100, &path, &root));
    }
    // An earlier head of 37 entries is a prefix of the head of 100.
    let old = TreeHead::sign(&leaves[..37], "2026-12-06T10:30:00Z", key.signing_key());
    let proof = consistency_proof(&leaves, 37).unwrap();
    assert!(verify_consistency(
        37,
        100,
        &parse_hash(&old.root).unwrap(),
        &root,
        &proof
    ));
}

#[test]
fn entries_survive_a_json_round_trip_with_the_same_hash() {
    let entries = build(5);
    for e in &entries {
        let text = serde_json::to_string_pretty(e).unwrap();
        let back: LogEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back.leaf_hash(), e.leaf_hash());
    }
}
