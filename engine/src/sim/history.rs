//! The client history the simulator records (stand-in until the checker's
//! `Operation` type lands; same fields and JSON-lines format).

use serde_json::{json, Value};

/// What an operation asked the store to do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum OperationKind {
    /// Read the key's value.
    Get,
    /// Set the key to a value.
    Put,
    /// Make the key absent.
    Delete,
    /// Compare-and-set.
    Cas,
}

/// How an operation ended, as far as its client knows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Outcome {
    /// Took effect once, between invoke and complete.
    Ok,
    /// Surely took no effect.
    Failed,
    /// The client never learned.
    Unknown,
}

/// What an operation returned to its client.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Output {
    /// No output.
    None,
    /// A get's value.
    Value(Option<String>),
    /// A cas's result.
    Cas(bool),
}

/// One client operation of a history.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Operation {
    /// The client.
    pub client: u64,
    /// The kind.
    pub kind: OperationKind,
    /// The key.
    pub key: String,
    /// A put's value or a cas's new value.
    pub value: Option<String>,
    /// A cas's expected value.
    pub expected: Option<String>,
    /// What the client was told.
    pub output: Output,
    /// When the client sent it, virtual nanoseconds.
    pub invoke_ns: u64,
    /// When the client got its reply or gave up.
    pub complete_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Operation {
    /// One JSON line.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        let kind = match self.kind {
            OperationKind::Get => "get",
            OperationKind::Put => "put",
            OperationKind::Delete => "delete",
            OperationKind::Cas => "cas",
        };
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        };
        let output = match &self.output {
            Output::None | Output::Value(None) => Value::Null,
            Output::Value(Some(text)) => Value::String(text.clone()),
            Output::Cas(swapped) => Value::Bool(*swapped),
        };
        json!({
            "client": self.client,
            "kind": kind,
            "key": self.key,
            "value": self.value,
            "expected": self.expected,
            "output": output,
            "invoke": self.invoke_ns,
            "complete": self.complete_ns,
            "outcome": outcome,
        })
        .to_string()
    }
}
