//! Raw field values, the one shape every record passes through.
//!
//! A record arrives as CLI flags, CSV cells, JSON or Automerge scalars; all of
//! them become a [`Fields`] map first, and only [`crate::record`] turns a
//! `Fields` into a typed record, collecting every problem at once. Edits are a
//! `Fields` patch laid over the stored record's `Fields`, so an edit is
//! validated exactly like an add.

use std::collections::BTreeMap;

use serde_json::Value;

/// Field name → raw JSON value (`Null` means "clear this optional field").
pub type Fields = BTreeMap<String, Value>;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in a record, so the user can fix them all in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the record was not saved: {n} problem{}",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was collected, so validators can end with `errs.finish(v)`.
    pub fn finish<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}
