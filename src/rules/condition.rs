//! CEL conditions (SPEC §2, §4): compiled once when the configuration loads, evaluated per
//! request over `subject`, `actor`, `client` and `request` in a child scope of a standard
//! context built once per thread. Evaluation is bounded by construction: the source is short
//! and may hold few comprehension macros, so no expression can loop long over a token's lists.

use std::sync::Arc;

use cel::{Context, Program, Value as CelValue};
use serde_json::{Value, json};

/// Longest condition accepted, in bytes.
const MAX_SOURCE: usize = 2048;
/// Comprehension macros (all, exists, exists_one, map, filter) a condition may use.
const MAX_COMPREHENSIONS: usize = 2;

#[derive(Clone)]
pub struct Condition {
    pub source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// What a condition sees of one exchange.
pub struct Input<'a> {
    pub subject: &'a serde_json::Map<String, Value>,
    pub actor: Option<&'a serde_json::Map<String, Value>>,
    pub client: &'a str,
    pub audiences: &'a [String],
    pub resources: &'a [String],
    pub scopes: &'a [String],
}

thread_local! {
    static STANDARD: Context<'static, 'static> = Context::default();
}

impl Condition {
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.len() > MAX_SOURCE {
            return Err(format!("is longer than {MAX_SOURCE} bytes"));
        }
        let comprehensions = [".all(", ".exists(", ".exists_one(", ".map(", ".filter("]
            .iter()
            .map(|m| source.matches(m).count())
            .sum::<usize>();
        if comprehensions > MAX_COMPREHENSIONS {
            return Err(format!(
                "uses more than {MAX_COMPREHENSIONS} comprehension macros (all, exists, exists_one, map, filter)"
            ));
        }
        let program = Program::compile(source).map_err(|e| format!("is not valid CEL: {e}"))?;
        let bound = comprehension_variables(source);
        let known = ["subject", "actor", "client", "request"];
        let references = program.references();
        if let Some(unknown) = references
            .variables()
            .into_iter()
            .find(|v| !known.contains(v) && !bound.iter().any(|b| b == v))
        {
            return Err(format!(
                "uses \"{unknown}\"; the variables are subject, actor, client and request"
            ));
        }
        Ok(Self {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    /// `Ok(true)` only for a boolean true; `Err` for anything that is not a boolean.
    pub fn evaluate(&self, input: &Input<'_>) -> Result<bool, String> {
        let request = json!({ "audiences": input.audiences, "resources": input.resources, "scopes": input.scopes });
        let values = [
            ("subject", cel::to_value(input.subject)),
            ("actor", cel::to_value(input.actor)),
            ("client", Ok(CelValue::from(input.client.to_string()))),
            ("request", cel::to_value(&request)),
        ];
        STANDARD.with(|standard| {
            let mut scope = standard.new_inner_scope();
            for (name, value) in values {
                scope.add_variable_from_value(
                    name,
                    value.map_err(|e| format!("cannot pass {name} to CEL: {e}"))?,
                );
            }
            match self.program.execute(&scope) {
                Ok(CelValue::Bool(b)) => Ok(b),
                Ok(other) => Err(format!("evaluated to {other:?}, not a boolean")),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// Names bound by comprehension macros, as in `list.all(x, …)`: `x`.
fn comprehension_variables(source: &str) -> Vec<&str> {
    ["all(", "exists(", "exists_one(", "map(", "filter("]
        .iter()
        .flat_map(|m| source.match_indices(m).map(move |(i, _)| i + m.len()))
        .filter_map(|start| {
            let rest = source.get(start..)?;
            let name = rest.split(',').next()?.trim();
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid.then_some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(source: &str, subject: Value) -> Result<bool, String> {
        let subject = subject.as_object().cloned().unwrap_or_default();
        let scopes = vec!["inventory:read".to_string()];
        let input = Input {
            subject: &subject,
            actor: None,
            client: "orders-svc",
            audiences: &["inventory-api".into()],
            resources: &[],
            scopes: &scopes,
        };
        Condition::compile(source)?.evaluate(&input)
    }

    #[test]
    fn conditions_see_subject_client_and_request() {
        assert_eq!(
            eval(r#""staff" in subject.groups"#, json!({"groups": ["staff"]})),
            Ok(true)
        );
        assert_eq!(
            eval(
                r#""staff" in subject.groups"#,
                json!({"groups": ["guests"]})
            ),
            Ok(false)
        );
        assert_eq!(
            eval(
                r#"client == "orders-svc" && "inventory-api" in request.audiences"#,
                json!({})
            ),
            Ok(true)
        );
        assert_eq!(eval(r#"actor == null"#, json!({})), Ok(true));
        assert_eq!(
            eval(
                r#"request.scopes.all(s, s.startsWith("inventory:"))"#,
                json!({})
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                r#"has(subject.tenant) && subject.tenant == "acme""#,
                json!({"tenant": "acme"})
            ),
            Ok(true)
        );
    }

    #[test]
    fn errors_and_non_booleans_never_allow() {
        assert!(eval("subject.groups[5] == 1", json!({"groups": []})).is_err());
        assert!(eval("subject.missing == 1", json!({})).is_err());
        assert!(eval(r#""a string""#, json!({})).is_err());
    }

    #[test]
    fn compilation_refuses_what_could_run_away_or_is_not_cel() {
        assert!(Condition::compile("subject.").is_err());
        assert!(Condition::compile("unknown_var == 1").is_err());
        assert!(Condition::compile(&format!("{} == 1", "a".repeat(MAX_SOURCE))).is_err());
        let nested = "subject.g.all(a, subject.g.all(b, subject.g.all(c, a == b && b == c)))";
        assert!(Condition::compile(nested).is_err());
    }
}
