//! The files Outpost writes over records, with no storage and no I/O of
//! its own beyond the writer it is handed: the laptop (`outpost export`,
//! `outpost report`) and the hub (`outpost admin export|report`, the
//! coordinators' dashboard) write the same bytes from the same code.
//!
//! Layout:
//! - [`export`]: CSV / JSONL / XLSX writers over projected records, one
//!   column per field of `outpost_proto::schema`, and the cell helpers the
//!   importer reads them back with.
//! - [`import`]: the reverse of [`export`]: rows out of CSV (UTF-8 or
//!   Windows-1252), JSONL or XLSX (as Excel or LibreOffice save an edited
//!   export), headers mapped onto the field table in Swedish or English,
//!   bounded against hostile files; validation is the caller's.
//! - [`report`]: the annual report, laid out from `outpost_proto::stats`
//!   figures: one self-contained HTML page with inline SVG charts, or
//!   ([`report::xlsx`]) a workbook with native charts.

pub mod export;
pub mod import;
pub mod report;
