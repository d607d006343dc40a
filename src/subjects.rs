//! Subject patterns (SPEC §10): a rule may name the subjects it applies to, `*` matching any run
//! of characters (none included), everything else itself. A pattern starting with `/` matches
//! the path of a SPIFFE ID, any other the whole `sub`. `SubjectIndex` finds the rules whose
//! patterns can match a subject at a cost that does not grow with the number of rules.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::spiffe::path as spiffe_path;

/// The longest pattern taken: a `sub` is an identifier, not a document.
pub const MAX_PATTERN_CHARS: usize = 512;

/// One entry of a rule's `subjects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPattern {
    text: String,
    /// The literal runs between the `*`s: one run for a pattern without any.
    runs: Vec<String>,
}

/// What a pattern is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The whole `sub`.
    Subject,
    /// The path of the SPIFFE ID in `sub`.
    SpiffePath,
}

impl SubjectPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("a subject pattern must not be empty".into());
        }
        if text.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!(
                "a subject pattern holds at most {MAX_PATTERN_CHARS} characters"
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(format!(
                "\"{}\" holds a control character",
                text.escape_default()
            ));
        }
        Ok(Self {
            text: text.to_string(),
            runs: text.split('*').map(str::to_string).collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn target(&self) -> Target {
        if self.text.starts_with('/') {
            Target::SpiffePath
        } else {
            Target::Subject
        }
    }

    /// The literal text before the first `*` (the whole pattern when it has none).
    pub fn prefix(&self) -> &str {
        &self.runs[0]
    }

    pub fn is_exact(&self) -> bool {
        self.runs.len() == 1
    }

    /// Whether `value` (the `sub`, or the SPIFFE path, per `target`) matches. The first run is
    /// a prefix, the last a suffix, and those between are taken leftmost in order, which is
    /// exact for patterns whose only wildcard is `*`.
    pub fn matches(&self, value: &str) -> bool {
        let (first, last) = (&self.runs[0], &self.runs[self.runs.len() - 1]);
        if self.is_exact() {
            return value == first;
        }
        if value.len() < first.len() + last.len()
            || !value.starts_with(first.as_str())
            || !value.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &value[first.len()..value.len() - last.len()];
        for run in &self.runs[1..self.runs.len() - 1] {
            match rest.find(run.as_str()) {
                Some(at) => rest = &rest[at + run.len()..],
                None => return false,
            }
        }
        true
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Rules (by position) found from the subjects they name: those that name none apply to any
/// subject; the others are kept under their patterns' literal prefix, so a lookup costs one
/// probe per distinct prefix length, however many rules there are.
#[derive(Debug, Default)]
pub struct SubjectIndex {
    any: Vec<usize>,
    by_target: [PrefixIndex; 2],
}

#[derive(Debug, Default)]
struct PrefixIndex {
    by_prefix: HashMap<String, Vec<usize>>,
    prefix_lengths: BTreeSet<usize>,
}

impl SubjectIndex {
    /// Adds the rule at `position` (added in increasing order) with its `patterns`.
    pub fn add(&mut self, position: usize, patterns: &[SubjectPattern]) {
        if patterns.is_empty() {
            self.any.push(position);
            return;
        }
        for pattern in patterns {
            let index = &mut self.by_target[pattern.target() as usize];
            let entry = index
                .by_prefix
                .entry(pattern.prefix().to_string())
                .or_default();
            if entry.last() != Some(&position) {
                entry.push(position);
            }
            index.prefix_lengths.insert(pattern.prefix().len());
        }
    }

    /// The positions of the rules that may apply to `sub`, in increasing order: every rule
    /// naming no subject, and those with a pattern whose prefix `sub` (or its SPIFFE path)
    /// starts with. Their patterns are still to be matched. Borrowed, with no allocation, when
    /// no pattern's prefix fits (rules without `subjects` above all).
    pub fn candidates(&self, sub: &str) -> Cow<'_, [usize]> {
        let mut found: Option<Vec<usize>> = None;
        for (index, target) in self
            .by_target
            .iter()
            .zip([Target::Subject, Target::SpiffePath])
        {
            if index.by_prefix.is_empty() {
                continue;
            }
            let value = match target {
                Target::Subject => Some(sub),
                Target::SpiffePath => spiffe_path(sub),
            };
            let Some(value) = value else { continue };
            for &len in index.prefix_lengths.range(..=value.len()) {
                if let Some(prefix) = value.get(..len)
                    && let Some(positions) = index.by_prefix.get(prefix)
                {
                    found
                        .get_or_insert_with(|| self.any.clone())
                        .extend_from_slice(positions);
                }
            }
        }
        match found {
            None => Cow::Borrowed(&self.any),
            Some(mut found) => {
                found.sort_unstable();
                found.dedup();
                Cow::Owned(found)
            }
        }
    }
}

/// Whether a rule naming `patterns` applies to `sub`: it names none, or one matches. A `/`
/// pattern matches `spiffe_path`, the path of the SPIFFE ID in `sub` when the token was verified
/// by that ID's own trust domain, and nothing otherwise.
pub fn any_matches(patterns: &[SubjectPattern], sub: &str, spiffe_path: Option<&str>) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.target() {
            Target::Subject => p.matches(sub),
            Target::SpiffePath => spiffe_path.is_some_and(|path| p.matches(path)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Matching as for a token its SPIFFE ID's own trust domain verified.
    fn m(patterns: &[SubjectPattern], sub: &str) -> bool {
        any_matches(patterns, sub, spiffe_path(sub))
    }

    fn p(text: &str) -> SubjectPattern {
        SubjectPattern::parse(text).expect("pattern")
    }

    #[test]
    fn a_star_matches_any_run_of_characters() {
        let sa = p("system:serviceaccount:payments:*");
        assert!(sa.matches("system:serviceaccount:payments:api"));
        assert!(sa.matches("system:serviceaccount:payments:"));
        assert!(sa.matches("system:serviceaccount:payments:a:b"));
        assert!(!sa.matches("system:serviceaccount:billing:api"));
        assert!(!sa.matches("system:serviceaccount:payments"));

        let gh = p("repo:acme/*:environment:prod*");
        assert!(gh.matches("repo:acme/api:environment:production"));
        assert!(gh.matches("repo:acme/api:environment:prod"));
        assert!(!gh.matches("repo:acme/api:ref:refs/heads/main"));
        assert!(!gh.matches("repo:evil/acme/x:environment:stage"));

        let middle = p("a*b*c");
        assert!(middle.matches("abc") && middle.matches("axxbyyc") && middle.matches("abbc"));
        assert!(!middle.matches("ac") && !middle.matches("acb") && !middle.matches("abcx"));
        assert!(p("*").matches("") && p("*").matches("anything"));
        assert!(p("**").matches("x"));
        let overlap = p("ab*ba");
        assert!(
            !overlap.matches("aba"),
            "prefix and suffix may not share characters"
        );
        assert!(overlap.matches("abba"));
    }

    #[test]
    fn without_a_star_a_pattern_is_the_subject_itself() {
        let exact = p("repo:acme/api:ref:refs/heads/main");
        assert!(exact.is_exact());
        assert!(exact.matches("repo:acme/api:ref:refs/heads/main"));
        assert!(!exact.matches("repo:acme/api:ref:refs/heads/main2"));
        assert!(!exact.matches("Repo:acme/api:ref:refs/heads/main"));
    }

    #[test]
    fn patterns_are_checked() {
        assert!(SubjectPattern::parse("").is_err());
        assert!(SubjectPattern::parse("a\nb").is_err());
        assert!(SubjectPattern::parse(&"a".repeat(MAX_PATTERN_CHARS + 1)).is_err());
        assert!(SubjectPattern::parse(&"a".repeat(MAX_PATTERN_CHARS)).is_ok());
    }

    #[test]
    fn a_slash_pattern_matches_the_spiffe_path() {
        let path = p("/ns/payments/sa/*");
        assert_eq!(path.target(), Target::SpiffePath);
        assert!(m(
            std::slice::from_ref(&path),
            "spiffe://example.org/ns/payments/sa/api"
        ));
        assert!(!m(
            std::slice::from_ref(&path),
            "spiffe://example.org/ns/billing/sa/api"
        ));
        assert!(
            !m(std::slice::from_ref(&path), "/ns/payments/sa/api"),
            "no SPIFFE ID"
        );
        assert!(
            !any_matches(&[path], "spiffe://example.org/ns/payments/sa/api", None),
            "a SPIFFE ID its trust domain did not vouch for has no path to match"
        );
        assert!(m(&[], "whoever"), "no patterns: any subject");
    }

    #[test]
    fn the_index_finds_every_rule_that_may_match_in_order() {
        let mut index = SubjectIndex::default();
        index.add(0, &[p("system:serviceaccount:payments:*")]);
        index.add(1, &[]);
        index.add(2, &[p("system:serviceaccount:payments:api")]);
        index.add(3, &[p("*:api"), p("system:*")]);
        index.add(4, &[p("/ns/payments/*")]);
        index.add(5, &[p("repo:acme/api:*")]);
        assert_eq!(
            *index.candidates("system:serviceaccount:payments:api"),
            [0, 1, 2, 3]
        );
        assert_eq!(*index.candidates("repo:acme/api:ref:x"), [1, 3, 5]);
        assert_eq!(
            *index.candidates("spiffe://example.org/ns/payments/sa/api"),
            [1, 3, 4]
        );
        assert_eq!(*index.candidates("x"), [1, 3]);
        assert_eq!(*index.candidates(""), [1, 3]);
    }

    #[test]
    fn rules_without_subjects_are_found_without_allocating() {
        let mut index = SubjectIndex::default();
        index.add(0, &[]);
        index.add(1, &[]);
        assert!(matches!(index.candidates("alice"), Cow::Borrowed([0, 1])));
        index.add(2, &[p("bob")]);
        assert!(matches!(index.candidates("alice"), Cow::Borrowed([0, 1])));
        assert_eq!(*index.candidates("bob"), [0, 1, 2]);
    }

    #[test]
    fn the_index_agrees_with_matching_on_many_patterns() {
        let patterns: Vec<SubjectPattern> = (0..200)
            .map(|i| match i % 4 {
                0 => p(&format!("system:serviceaccount:ns{i}:*")),
                1 => p(&format!("repo:org/r{i}:ref:refs/heads/main")),
                2 => p(&format!("repo:org/r{i}:*:prod")),
                _ => p(&format!("/ns/ns{i}/sa/*")),
            })
            .collect();
        let mut index = SubjectIndex::default();
        for (i, pattern) in patterns.iter().enumerate() {
            index.add(i, std::slice::from_ref(pattern));
        }
        for sub in [
            "system:serviceaccount:ns40:api".to_string(),
            "repo:org/r41:ref:refs/heads/main".to_string(),
            "repo:org/r42:environment:prod".to_string(),
            "spiffe://td/ns/ns43/sa/x".to_string(),
            "repo:org/r45:ref:refs/heads/main".to_string(),
        ] {
            let matching: Vec<usize> = (0..patterns.len())
                .filter(|i| m(std::slice::from_ref(&patterns[*i]), &sub))
                .collect();
            let found: Vec<usize> = index
                .candidates(&sub)
                .iter()
                .copied()
                .filter(|i| m(std::slice::from_ref(&patterns[*i]), &sub))
                .collect();
            assert_eq!(found, matching, "{sub}");
            assert_eq!(matching.len(), 1, "{sub}");
        }
        let none = "repo:org/r4:ref:refs/heads/main";
        assert!(
            index
                .candidates(none)
                .iter()
                .copied()
                .all(|i| !m(std::slice::from_ref(&patterns[i]), none))
        );
    }
}
