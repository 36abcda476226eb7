//! The history format: JSON lines, one object per client operation.
//!
//! Every line holds all nine fields, in this order when written:
//!
//! ```text
//! {"client":3,"kind":"cas","key":"k","value":"new","expected":null,"output":true,"invoke":100,"complete":250,"outcome":"ok"}
//! ```
//!
//! - `client`: integer; `kind`: `get`, `put`, `delete` or `cas`; `key`: string.
//! - `value`: the string a put writes or a cas's new value; null otherwise.
//! - `expected`: a cas's expected value, null meaning absent; null otherwise.
//! - `output`: a get's read value (null when absent); a cas's result (true or
//!   false; may be null unless the outcome is `ok`); null otherwise.
//! - `invoke`, `complete`: virtual time in nanoseconds, `invoke <= complete`.
//! - `outcome`: `ok`, `failed` (surely took no effect) or `unknown` (the
//!   client never learned; `complete` is when it gave up).
//!
//! Unknown and missing fields are errors; lines holding only whitespace are
//! skipped. Parsing never panics.

use std::fmt;
use std::io::BufRead;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// What an operation asked the store to do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// Read the key's value.
    Get,
    /// Set the key to a value.
    Put,
    /// Make the key absent.
    Delete,
    /// Compare-and-set: set the key to a new value if it holds the expected one.
    Cas,
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationKind::Get => "get",
            OperationKind::Put => "put",
            OperationKind::Delete => "delete",
            OperationKind::Cas => "cas",
        })
    }
}

/// How an operation ended, as far as its client knows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The client got a reply: the operation took effect once, between its
    /// invoke and complete times.
    Ok,
    /// The operation surely took no effect.
    Failed,
    /// The client never learned: the operation may take effect at any time
    /// after its invoke time, or never.
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        })
    }
}

/// What an operation returned to its client.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Output {
    /// No output: puts, deletes, and a cas whose result is not known. Written
    /// as JSON null.
    None,
    /// A get's read value; `None` when the key was absent. Every get carries
    /// this variant, whatever its outcome (JSON null reads back as
    /// `Value(None)` for a get).
    Value(Option<String>),
    /// A cas's result: whether it swapped.
    Cas(bool),
}

impl Output {
    /// The output as it appears in the `output` field.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Output::None | Output::Value(None) => Value::Null,
            Output::Value(Some(text)) => Value::String(text.clone()),
            Output::Cas(swapped) => Value::Bool(*swapped),
        }
    }

    /// Reads an `output` field for an operation of `kind`.
    ///
    /// # Errors
    /// [`InvalidOperation::OutputShape`] when the JSON type cannot be an
    /// output of `kind` (a get's must be a string or null, a cas's a boolean
    /// or null, the others' null).
    pub fn from_json(kind: OperationKind, output: Value) -> Result<Output, InvalidOperation> {
        match (kind, output) {
            (OperationKind::Get, Value::Null) => Ok(Output::Value(None)),
            (OperationKind::Get, Value::String(text)) => Ok(Output::Value(Some(text))),
            (OperationKind::Cas, Value::Bool(swapped)) => Ok(Output::Cas(swapped)),
            (_, Value::Null) => Ok(Output::None),
            (kind, found) => Err(InvalidOperation::OutputShape {
                kind,
                found: found.to_string(),
            }),
        }
    }
}

/// One client operation of a history, with its real-time interval.
///
/// Serializes to (and deserializes from, with validation) one history line;
/// see the [module docs](self) for the format.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(try_from = "OperationRecord")]
pub struct Operation {
    /// The client that issued the operation.
    pub client: u64,
    /// What the operation does.
    pub kind: OperationKind,
    /// The key it works on.
    pub key: String,
    /// The value a put writes or a cas's new value; `None` for get and delete.
    pub value: Option<String>,
    /// A cas's expected value (`None`: absent); `None` for the other kinds.
    pub expected: Option<String>,
    /// What the client was told.
    pub output: Output,
    /// When the client sent it, virtual nanoseconds.
    pub invoke_ns: u64,
    /// When the client got its reply or gave up, virtual nanoseconds.
    pub complete_ns: u64,
    /// Whether it took effect.
    pub outcome: Outcome,
}

/// Why an [`Operation`] is not well formed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOperation {
    /// `complete` is before `invoke`.
    #[error("complete ({complete_ns} ns) is before invoke ({invoke_ns} ns)")]
    CompleteBeforeInvoke {
        /// The operation's invoke time.
        invoke_ns: u64,
        /// The operation's complete time.
        complete_ns: u64,
    },
    /// A put or cas without a `value`.
    #[error("a {kind} needs a string value")]
    ValueMissing {
        /// The operation's kind.
        kind: OperationKind,
    },
    /// A get or delete with a `value`.
    #[error("a {kind} has no value; it must be null")]
    ValueUnexpected {
        /// The operation's kind.
        kind: OperationKind,
    },
    /// `expected` set on something other than a cas.
    #[error("only a cas has an expected value; for a {kind} it must be null")]
    ExpectedUnexpected {
        /// The operation's kind.
        kind: OperationKind,
    },
    /// The `output` field's JSON type cannot be an output of this kind.
    #[error("a {kind} cannot have output {found}")]
    OutputShape {
        /// The operation's kind.
        kind: OperationKind,
        /// The offending output, as JSON.
        found: String,
    },
    /// The output does not fit the kind and outcome (for instance an `ok`
    /// cas without a boolean result).
    #[error("a {kind} with outcome {outcome} cannot have output {found:?}")]
    OutputMismatch {
        /// The operation's kind.
        kind: OperationKind,
        /// The operation's outcome.
        outcome: Outcome,
        /// The offending output.
        found: Output,
    },
}

impl Operation {
    /// Checks that the fields fit together: value and expected only where
    /// the kind has them, an output that fits kind and outcome, and
    /// `invoke_ns <= complete_ns`.
    ///
    /// # Errors
    /// The first problem found, as an [`InvalidOperation`].
    pub fn validate(&self) -> Result<(), InvalidOperation> {
        if self.complete_ns < self.invoke_ns {
            return Err(InvalidOperation::CompleteBeforeInvoke {
                invoke_ns: self.invoke_ns,
                complete_ns: self.complete_ns,
            });
        }
        let kind = self.kind;
        let writes_value = matches!(kind, OperationKind::Put | OperationKind::Cas);
        match (writes_value, &self.value) {
            (true, None) => return Err(InvalidOperation::ValueMissing { kind }),
            (false, Some(_)) => return Err(InvalidOperation::ValueUnexpected { kind }),
            _ => {}
        }
        if kind != OperationKind::Cas && self.expected.is_some() {
            return Err(InvalidOperation::ExpectedUnexpected { kind });
        }
        let output_fits = match (kind, &self.output) {
            (OperationKind::Get, Output::Value(_)) => true,
            (OperationKind::Cas, Output::Cas(_)) => true,
            (OperationKind::Cas, Output::None) => self.outcome != Outcome::Ok,
            (OperationKind::Put | OperationKind::Delete, Output::None) => true,
            _ => false,
        };
        if !output_fits {
            return Err(InvalidOperation::OutputMismatch {
                kind,
                outcome: self.outcome,
                found: self.output.clone(),
            });
        }
        Ok(())
    }

    /// The operation as one history line of JSON, without a line ending.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self)
            .expect("an operation is strings, integers, booleans and null, which always serialize")
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}: {} {:?}", self.client, self.kind, self.key)?;
        match self.kind {
            OperationKind::Get | OperationKind::Delete => {}
            OperationKind::Put => write_optional(f, " ", self.value.as_deref())?,
            OperationKind::Cas => {
                write_optional(f, " if ", self.expected.as_deref())?;
                write_optional(f, " then ", self.value.as_deref())?;
            }
        }
        match &self.output {
            Output::None => {}
            Output::Value(read) => write_optional(f, " -> ", read.as_deref())?,
            Output::Cas(swapped) => write!(f, " -> {swapped}")?,
        }
        write!(
            f,
            " [{}, {}..{} ns]",
            self.outcome, self.invoke_ns, self.complete_ns
        )
    }
}

fn write_optional(f: &mut fmt::Formatter<'_>, prefix: &str, text: Option<&str>) -> fmt::Result {
    match text {
        Some(text) => write!(f, "{prefix}{text:?}"),
        None => write!(f, "{prefix}absent"),
    }
}

/// The wire shape of a line, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationRecord {
    client: u64,
    kind: OperationKind,
    key: String,
    // `Option::deserialize` makes the field required: absent is an error,
    // only an explicit null is `None`.
    #[serde(deserialize_with = "Option::deserialize")]
    value: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    expected: Option<String>,
    output: Value,
    invoke: u64,
    complete: u64,
    outcome: Outcome,
}

impl TryFrom<OperationRecord> for Operation {
    type Error = InvalidOperation;

    fn try_from(record: OperationRecord) -> Result<Operation, InvalidOperation> {
        let operation = Operation {
            client: record.client,
            kind: record.kind,
            key: record.key,
            value: record.value,
            expected: record.expected,
            output: Output::from_json(record.kind, record.output)?,
            invoke_ns: record.invoke,
            complete_ns: record.complete,
            outcome: record.outcome,
        };
        operation.validate()?;
        Ok(operation)
    }
}

/// The wire shape of a line, borrowed for writing.
#[derive(Serialize)]
struct OperationRecordRef<'a> {
    client: u64,
    kind: OperationKind,
    key: &'a str,
    value: Option<&'a str>,
    expected: Option<&'a str>,
    output: Value,
    invoke: u64,
    complete: u64,
    outcome: Outcome,
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        OperationRecordRef {
            client: self.client,
            kind: self.kind,
            key: &self.key,
            value: self.value.as_deref(),
            expected: self.expected.as_deref(),
            output: self.output.to_json(),
            invoke: self.invoke_ns,
            complete: self.complete_ns,
            outcome: self.outcome,
        }
        .serialize(serializer)
    }
}

/// Why a history could not be read. Line numbers count from 1 and include
/// blank lines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The line is not JSON, or not an object with the history's fields and
    /// types (for instance an unknown kind or a missing field).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// The line number.
        line: usize,
        /// The column within the line where the parser stopped.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The line is well-typed JSON but its fields do not fit together.
    #[error("line {line}: {reason}")]
    Invalid {
        /// The line number.
        line: usize,
        /// What is wrong with the operation.
        reason: InvalidOperation,
    },
    /// The reader failed (including on bytes that are not UTF-8).
    #[error("line {line}: cannot read: {error}")]
    Read {
        /// The line number.
        line: usize,
        /// The reader's error.
        error: std::io::Error,
    },
    /// A line longer than any operation's (a file without line breaks,
    /// such as `/dev/zero`): refused before it fills the memory.
    #[error("line {line} is longer than {line_bytes_max} bytes")]
    LineTooLong {
        /// The line number.
        line: usize,
        /// The limit.
        line_bytes_max: usize,
    },
}

impl HistoryError {
    /// The line the error is on, counting from 1.
    #[must_use]
    pub fn line(&self) -> usize {
        match self {
            HistoryError::Syntax { line, .. }
            | HistoryError::Invalid { line, .. }
            | HistoryError::Read { line, .. }
            | HistoryError::LineTooLong { line, .. } => *line,
        }
    }
}

/// Parses a whole history held in memory, one operation per line.
///
/// # Errors
/// The first malformed line, as a [`HistoryError`] carrying its line number.
pub fn parse_history(text: &str) -> Result<Vec<Operation>, HistoryError> {
    let mut operations = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if let Some(operation) = parse_line(index + 1, line)? {
            operations.push(operation);
        }
    }
    Ok(operations)
}

/// Parses a history from a reader, one operation per line.
///
/// # Errors
/// The first line that cannot be read or is malformed, as a
/// [`HistoryError`] carrying its line number.
pub fn read_history<R: BufRead>(reader: R) -> Result<Vec<Operation>, HistoryError> {
    read_history_lines(reader, LINE_BYTES_MAX)
}

/// The longest line a history may hold (far beyond any operation's).
pub const LINE_BYTES_MAX: usize = 64 << 20;

fn read_history_lines<R: BufRead>(
    mut reader: R,
    line_bytes_max: usize,
) -> Result<Vec<Operation>, HistoryError> {
    let mut operations = Vec::new();
    let mut bytes = Vec::new();
    for line_number in 1.. {
        bytes.clear();
        // Room for the longest line and its "\r\n": a read that fills it
        // without the line ending is a line past the limit.
        let limit = u64::try_from(line_bytes_max).map_or(u64::MAX, |max| max.saturating_add(2));
        let read = std::io::Read::take(&mut reader, limit)
            .read_until(b'\n', &mut bytes)
            .map_err(|error| HistoryError::Read {
                line: line_number,
                error,
            })?;
        if read == 0 {
            break;
        }
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.len() > line_bytes_max {
            return Err(HistoryError::LineTooLong {
                line: line_number,
                line_bytes_max,
            });
        }
        let line = std::str::from_utf8(&bytes).map_err(|_| HistoryError::Read {
            line: line_number,
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        })?;
        if let Some(operation) = parse_line(line_number, line)? {
            operations.push(operation);
        }
    }
    Ok(operations)
}

/// Parses one line; `None` for a blank line.
fn parse_line(line_number: usize, line: &str) -> Result<Option<Operation>, HistoryError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let record: OperationRecord = serde_json::from_str(line).map_err(|error| {
        // serde_json counts lines within the one line it was given; keep its
        // column and drop its " at line 1 column N" suffix.
        let full = error.to_string();
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        HistoryError::Syntax {
            line: line_number,
            column: error.column(),
            message,
        }
    })?;
    let operation = Operation::try_from(record).map_err(|reason| HistoryError::Invalid {
        line: line_number,
        reason,
    })?;
    Ok(Some(operation))
}

#[cfg(test)]
mod tests;
