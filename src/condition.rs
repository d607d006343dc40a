//! CEL conditions (SPEC §2, §4, §5): compiled once when the configuration loads, evaluated per
//! request over `subject`, `actor`, `client` and `request` in a child scope of a standard
//! context built once per thread.
//!
//! Bounded by what they do, not by how they are written. At compile time the parsed expression
//! is measured: its size, its depth, how many comprehension macros (all, exists, exists_one,
//! map, filter) it holds, and that none runs inside another's loop (whose cost would multiply).
//! At evaluation a condition with comprehensions is refused, as over its budget, for an input
//! holding a list or object longer than `MAX_ITERATIONS`, so that each loop is short whatever
//! the token carries. The exchange evaluates conditions off the HTTP workers, under a time
//! budget (`CONDITION_BUDGET`) as well.

use std::sync::Arc;
use std::time::Duration;

use cel::common::ast::{EntryExpr, Expr};
use cel::{Context, IdedExpr, Program, Value as CelValue};
use serde_json::{Value, json};

/// Longest condition accepted, in bytes.
const MAX_SOURCE: usize = 2048;
/// Comprehension macros a condition may use.
const MAX_COMPREHENSIONS: usize = 2;
/// Nodes of the parsed expression, and its depth.
const MAX_NODES: usize = 256;
const MAX_DEPTH: usize = 32;
/// The longest list or object a comprehension may loop over: a condition that has one is over
/// its budget for an input with a longer one.
pub const MAX_ITERATIONS: usize = 1000;
/// How long the exchange waits for its conditions before it denies the request.
pub const CONDITION_BUDGET: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct Condition {
    pub source: String,
    program: Arc<Program>,
    /// It holds comprehension macros, whose cost grows with the input.
    loops: bool,
    /// The variables it names: only those are passed to CEL.
    uses: Uses,
}

/// A set of the five variables (`VARIABLES`), one bit each.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Uses(u8);

const VARIABLES: [&str; 5] = ["subject", "actor", "client", "request", "spiffe"];

impl Uses {
    fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self(names.into_iter().fold(0, |bits, name| {
            bits | VARIABLES
                .iter()
                .position(|v| *v == name)
                .map_or(0, |i| 1 << i)
        }))
    }

    fn has(self, name: &str) -> bool {
        self.0 & Self::of([name]).0 != 0
    }

    fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// What a condition sees of one exchange.
pub struct Input<'a> {
    pub subject: &'a serde_json::Map<String, Value>,
    /// The subject's SPIFFE ID as trust domain and path, when its trust domain verified it.
    pub spiffe: Option<(&'a str, &'a str)>,
    pub actor: Option<&'a serde_json::Map<String, Value>>,
    pub client: &'a str,
    pub audiences: &'a [String],
    pub resources: &'a [crate::oauth::Resource],
    pub scopes: &'a crate::oauth::Scopes,
    /// A Txn-Token request's `request_context` and `request_details` (SPEC §8): JSON objects,
    /// seen as `request.context` and `request.details` (empty when not sent).
    pub context: Option<&'a Value>,
    pub details: Option<&'a Value>,
}

/// Why a condition gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It would have run longer than its budget allows.
    OverBudget,
    /// It could not be evaluated: the evaluator's words, which can name claims (for the
    /// audit record, never for the client).
    Error(String),
}

thread_local! {
    static STANDARD: Context<'static, 'static> = Context::default();
}

/// What the compile-time walk measured.
#[derive(Default)]
struct Shape<'a> {
    nodes: usize,
    depth: usize,
    comprehensions: usize,
    nested: bool,
    /// A comprehension loops over a list the expression builds (`(a + a + a).all(…)`), whose
    /// length no input bound limits.
    built_range: bool,
    /// Names bound by comprehensions (loop and accumulator variables).
    bound: Vec<&'a str>,
}

impl<'a> Shape<'a> {
    fn of(expr: &'a IdedExpr) -> Self {
        let mut shape = Self::default();
        shape.walk(expr, 1, false);
        shape
    }

    fn walk(&mut self, e: &'a IdedExpr, depth: usize, in_loop: bool) {
        self.nodes += 1;
        self.depth = self.depth.max(depth);
        if self.nodes > MAX_NODES || depth > MAX_DEPTH {
            return;
        }
        let next = depth + 1;
        match &e.expr {
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.walk(target, next, in_loop);
                }
                for arg in &call.args {
                    self.walk(arg, next, in_loop);
                }
            }
            Expr::Comprehension(c) => {
                self.comprehensions += 1;
                self.nested |= in_loop;
                self.built_range |= !plain_range(&c.iter_range);
                self.bound.push(&c.iter_var);
                self.bound.extend(c.iter_var2.as_deref());
                self.bound.push(&c.accu_var);
                self.walk(&c.iter_range, next, in_loop);
                self.walk(&c.accu_init, next, in_loop);
                for body in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(body, next, true);
                }
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.walk(element, next, in_loop);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(m) = &entry.expr {
                        self.walk(&m.key, next, in_loop);
                        self.walk(&m.value, next, in_loop);
                    }
                }
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value, next, in_loop);
                    }
                }
            }
            Expr::Select(select) => self.walk(&select.operand, next, in_loop),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

/// A loop's range whose length is that of an input value, a literal, or another loop's result:
/// a path into the input (`subject.groups`, `subject["k8s.io"].groups`), a literal list or map,
/// or a comprehension.
fn plain_range(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Ident(_) | Expr::List(_) | Expr::Map(_) | Expr::Comprehension(_) => true,
        Expr::Select(select) => plain_range(&select.operand),
        Expr::Call(call) if call.func_name == "_[_]" && call.target.is_none() => {
            matches!(call.args.as_slice(), [operand, key]
                if plain_range(operand) && matches!(key.expr, Expr::Literal(_)))
        }
        _ => false,
    }
}

impl Condition {
    pub fn compile(source: &str) -> Result<Self, String> {
        if source.len() > MAX_SOURCE {
            return Err(format!("is longer than {MAX_SOURCE} bytes"));
        }
        let program = Program::compile(source).map_err(|e| format!("is not valid CEL: {e}"))?;
        let shape = Shape::of(program.expression());
        if shape.nodes > MAX_NODES || shape.depth > MAX_DEPTH {
            return Err(format!(
                "is too large (at most {MAX_NODES} expression nodes, nested {MAX_DEPTH} deep)"
            ));
        }
        if shape.comprehensions > MAX_COMPREHENSIONS {
            return Err(format!(
                "uses more than {MAX_COMPREHENSIONS} comprehension macros (all, exists, exists_one, map, filter)"
            ));
        }
        if shape.built_range {
            return Err(
                "loops over a list the expression builds (e.g. with +); loop over a claim, a \
                 literal or another comprehension's result"
                    .into(),
            );
        }
        if shape.nested {
            return Err(
                "runs a comprehension macro (all, exists, exists_one, map, filter) inside another's \
                 loop; its cost would multiply"
                    .into(),
            );
        }
        let references = program.references();
        let variables = references.variables();
        if let Some(unknown) = variables
            .iter()
            .find(|v| !VARIABLES.contains(v) && !shape.bound.contains(v))
        {
            return Err(format!(
                "uses \"{unknown}\"; the variables are subject, actor, client, request and spiffe"
            ));
        }
        let loops = shape.comprehensions > 0;
        let uses = Uses::of(variables);
        Ok(Self {
            source: source.to_string(),
            program: Arc::new(program),
            loops,
            uses,
        })
    }

    /// `Ok(true)` only for a boolean true; a failure for anything that is not a boolean, and
    /// for an input too large for the condition's loops.
    pub fn evaluate(&self, input: &Input<'_>) -> Result<bool, Failure> {
        match self.execute(input)? {
            CelValue::Bool(b) => Ok(b),
            other => Err(Failure::Error(format!(
                "evaluated to {other:?}, not a boolean"
            ))),
        }
    }

    /// The values of `expressions` as JSON, for the claims a rule builds (a Txn-Token's `tctx`
    /// and `rctx`), over one input whose variables are passed to CEL once: a failure, with the
    /// position of the expression that failed, for what JSON cannot hold and for a value whose
    /// JSON is longer than `MAX_VALUE_BYTES`.
    pub fn values(
        expressions: &[&Condition],
        input: &Input<'_>,
    ) -> Result<Vec<Value>, (usize, Failure)> {
        if let Some(i) = expressions.iter().position(|e| e.loops)
            && longest_collection(input) > MAX_ITERATIONS
        {
            return Err((i, Failure::OverBudget));
        }
        let uses = expressions
            .iter()
            .fold(Uses::default(), |all, e| all.union(e.uses));
        with_scope(input, uses, |scope| {
            expressions
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let value = e
                        .program
                        .execute(scope)
                        .map_err(|err| Failure::Error(err.to_string()))
                        .and_then(|v| json_of(&v, 0))
                        .and_then(bounded)
                        .map_err(|f| (i, f))?;
                    Ok(value)
                })
                .collect()
        })
        .map_err(|f| (0, f))?
    }

    fn execute(&self, input: &Input<'_>) -> Result<CelValue, Failure> {
        if self.loops && longest_collection(input) > MAX_ITERATIONS {
            return Err(Failure::OverBudget);
        }
        with_scope(input, self.uses, |scope| {
            self.program
                .execute(scope)
                .map_err(|e| Failure::Error(e.to_string()))
        })?
    }
}

/// `f` in a scope holding the input's variables that `uses` names, each passed to CEL once
/// (converting a token's claims costs more than most expressions).
fn with_scope<R>(
    input: &Input<'_>,
    uses: Uses,
    f: impl FnOnce(&Context<'_, '_>) -> R,
) -> Result<R, Failure> {
    let request = || {
        let empty = Value::Object(serde_json::Map::new());
        cel::to_value(json!({
            "audiences": input.audiences,
            "resources": input.resources,
            "scopes": input.scopes,
            "context": input.context.unwrap_or(&empty),
            "details": input.details.unwrap_or(&empty),
        }))
    };
    let value = |name| match name {
        "subject" => cel::to_value(input.subject),
        "actor" => cel::to_value(input.actor),
        "client" => Ok(CelValue::from(input.client.to_string())),
        "request" => request(),
        _ => cel::to_value(spiffe_of(input.spiffe)),
    };
    STANDARD.with(|standard| {
        let mut scope = standard.new_inner_scope();
        for name in VARIABLES.into_iter().filter(|v| uses.has(v)) {
            let value = value(name);
            scope.add_variable_from_value(
                name,
                value.map_err(|e| Failure::Error(format!("cannot pass {name} to CEL: {e}")))?,
            );
        }
        Ok(f(&scope))
    })
}

/// A built value no longer than `MAX_VALUE_BYTES` of JSON.
fn bounded(value: Value) -> Result<Value, Failure> {
    if value.to_string().len() > MAX_VALUE_BYTES {
        return Err(Failure::Error(format!(
            "built a value longer than {MAX_VALUE_BYTES} bytes of JSON"
        )));
    }
    Ok(value)
}

/// The longest JSON a built claim may take, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;

/// A CEL value as JSON: what JSON holds (null, booleans, numbers, strings, lists, maps), and
/// no deeper than the expressions that may build it.
fn json_of(value: &CelValue, depth: usize) -> Result<Value, Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::Error("built a value nested too deep".into()));
    }
    Ok(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => (*i).into(),
        CelValue::UInt(u) => (*u).into(),
        CelValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| Failure::Error("built a number JSON cannot hold".into()))?,
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::List(list) => Value::Array(
            list.iter()
                .map(|v| json_of(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        CelValue::Map(map) => Value::Object(
            map.map
                .iter()
                .map(|(k, v)| Ok((k.to_string(), json_of(v, depth + 1)?)))
                .collect::<Result<_, Failure>>()?,
        ),
        other => {
            return Err(Failure::Error(format!(
                "built {other:?}, which JSON cannot hold"
            )));
        }
    })
}

/// The subject's SPIFFE ID in parts, `trust_domain` (`example.org`) and `path`
/// (`/ns/payments/sa/api`); both empty when there is none, so a condition on them is simply
/// false.
fn spiffe_of(id: Option<(&str, &str)>) -> Value {
    let (domain, path) = id.unwrap_or(("", ""));
    json!({ "trust_domain": domain, "path": path })
}

/// The longest list or object anywhere in the input.
fn longest_collection(input: &Input<'_>) -> usize {
    fn longest(v: &Value) -> usize {
        match v {
            Value::Array(list) => list.iter().map(longest).max().unwrap_or(0).max(list.len()),
            Value::Object(map) => map.values().map(longest).max().unwrap_or(0).max(map.len()),
            _ => 0,
        }
    }
    let claims = |m: &serde_json::Map<String, Value>| {
        m.values().map(longest).max().unwrap_or(0).max(m.len())
    };
    [
        claims(input.subject),
        input.actor.map_or(0, claims),
        input.audiences.len(),
        input.resources.len(),
        input.scopes.len(),
        input.context.map_or(0, longest),
        input.details.map_or(0, longest),
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(source: &str, subject: Value) -> Result<bool, Failure> {
        let subject = subject.as_object().cloned().unwrap_or_default();
        let scopes = crate::oauth::Scopes::parse("inventory:read").expect("scope");
        // As if the SPIFFE ID's own trust domain had verified the token.
        let sub = subject.get("sub").and_then(Value::as_str).unwrap_or("");
        let spiffe = crate::spiffe::trust_domain_id(sub)
            .zip(crate::spiffe::path(sub))
            .map(|(id, path)| (&id["spiffe://".len()..], path));
        let input = Input {
            subject: &subject,
            spiffe,
            actor: None,
            client: "orders-svc",
            audiences: &["inventory-api".into()],
            resources: &[],
            scopes: &scopes,
            context: None,
            details: None,
        };
        Condition::compile(source)
            .map_err(Failure::Error)?
            .evaluate(&input)
    }

    #[test]
    fn conditions_reach_nested_claims_of_workload_tokens() {
        let k8s = json!({
            "sub": "system:serviceaccount:payments:api",
            "kubernetes.io": {
                "namespace": "payments",
                "serviceaccount": { "name": "api", "uid": "0f5e" }
            }
        });
        assert_eq!(
            eval(
                r#"subject["kubernetes.io"].namespace == "payments" && subject["kubernetes.io"].serviceaccount.name == "api""#,
                k8s.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            eval(r#"subject["kubernetes.io"].namespace == "billing""#, k8s),
            Ok(false)
        );
        let github = json!({ "repository_owner_id": "123456", "repository_id": "456789" });
        assert_eq!(
            eval(
                r#"subject.repository_owner_id == "123456" && subject.repository_id in ["456789"]"#,
                github
            ),
            Ok(true)
        );
    }

    #[test]
    fn conditions_see_the_spiffe_id_in_parts() {
        let svid = json!({ "sub": "spiffe://example.org/ns/payments/sa/api" });
        assert_eq!(
            eval(
                r#"spiffe.trust_domain == "example.org" && spiffe.path.startsWith("/ns/payments/")"#,
                svid
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                r#"spiffe.path.startsWith("/ns/")"#,
                json!({ "sub": "alice" })
            ),
            Ok(false),
            "no SPIFFE ID: empty parts, a false condition"
        );
        assert!(Condition::compile("spiffeid == 1").is_err());
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

    #[test]
    fn limits_are_counted_on_the_parsed_expression_not_its_text() {
        // Spaces before the parenthesis, which a count of ".map(" in the text misses.
        let spaced = "subject.g.map (a, subject.g.map (b, a + b)).size() > 0";
        let err = Condition::compile(spaced).err().unwrap_or_default();
        assert!(err.contains("inside another"), "{err}");
        let three = "subject.g.all (a, a > 0) && subject.g.exists (b, b > 1) && subject.g.exists (c, c > 2)";
        let err = Condition::compile(three).err().unwrap_or_default();
        assert!(err.contains("more than 2"), "{err}");
        // Sequential comprehensions are fine: one's result is the other's range.
        assert!(Condition::compile("subject.g.map(x, x + 1).all(y, y > 0)").is_ok());
        assert!(Condition::compile(r#"subject["k8s.io"].groups.exists(g, g == "a")"#).is_ok());
        assert!(Condition::compile(r#"["a", "b"].exists(g, g in subject.groups)"#).is_ok());
        let built = "(subject.g + subject.g + subject.g).all(x, x > 0)";
        let err = Condition::compile(built).err().unwrap_or_default();
        assert!(err.contains("builds"), "{err}");
        let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        assert!(Condition::compile(&deep).is_ok(), "parentheses add no node");
        let wide = (0..300)
            .map(|i| format!("{i} == {i}"))
            .collect::<Vec<_>>()
            .join(" && ");
        assert!(Condition::compile(&wide).is_err(), "too many nodes");
    }

    #[test]
    fn only_named_variables_reach_cel() {
        let compiled = |s: &str| Condition::compile(s).expect("compiles");
        assert!(compiled("request.details.action").uses == Uses::of(["request"]));
        assert!(compiled("has(subject.tenant)").uses == Uses::of(["subject"]));
        assert_eq!(
            eval("has(subject.tenant)", json!({"tenant": "acme"})),
            Ok(true)
        );
        let uses = compiled("subject.g.all(x, x != actor.sub)").uses;
        assert!(
            uses == Uses::of(["subject", "actor"]),
            "a loop's own variable is none of the five"
        );
        let uses = compiled("spiffe.path").uses;
        assert!(uses.has("spiffe") && !uses.has("subject") && !uses.has("request"));
    }

    #[test]
    fn loops_over_long_inputs_are_over_budget() {
        let long: Vec<i64> = (0..(MAX_ITERATIONS as i64 + 1)).collect();
        assert_eq!(
            eval("subject.g.all(x, x >= 0)", json!({ "g": long })),
            Err(Failure::OverBudget)
        );
        let short: Vec<i64> = (0..MAX_ITERATIONS as i64).collect();
        assert_eq!(
            eval("subject.g.all(x, x >= 0)", json!({ "g": short })),
            Ok(true)
        );
        // Without loops, the cost is linear in the input: no such limit.
        let long: Vec<i64> = (0..5000).collect();
        assert_eq!(eval("4999 in subject.g", json!({ "g": long })), Ok(true));
    }
}
