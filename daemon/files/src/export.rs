//! Export of records as CSV, JSONL or XLSX (DESIGN.md section 6).
//!
//! Records are written as they arrive ([`Exporter::write`]), so a caller can
//! stream 100,000 records from the store without collecting them first. CSV
//! and JSONL go straight to the output; XLSX is a zip that can only be
//! written once complete, so its rows go to temporary files (in `TMPDIR`) as
//! they arrive, and [`Exporter::finish`] assembles the workbook in memory
//! (compressed, about a tenth of the CSV size) and writes it out. `out`
//! therefore needs only [`Write`], not `Seek`: stdout works.
//!
//! # Formats
//!
//! - **CSV**: UTF-8, a header row, one row per visit ([`VISIT_COLUMNS`]) or
//!   one row per course session ([`COURSE_COLUMNS`]; a course without
//!   sessions gets one row with the session columns empty). A CSV file has
//!   one header, so it holds one kind: an export that meets both kinds stops
//!   with [`ExportError::MixedKinds`] (the CLI defaults CSV to visits).
//!   With `excel` it is `;`-separated, starts with a UTF-8 byte order mark
//!   and ends lines with CRLF, which is what Swedish Excel opens correctly
//!   with a double click.
//! - **JSONL**: one record per line, in the record's own JSON form (the same
//!   objects as `list --json`), both kinds mixed.
//! - **XLSX**: a sheet per kind present ("Visits", "Courses") with the CSV
//!   columns; header bold and frozen, with a filter; minutes, participants
//!   and dates are real numbers and dates so they can be summed and sorted.
//!
//! # Cell formats (shared by CSV and XLSX, read back by the importer)
//!
//! - Optional values that are absent are empty cells; `time` is `HH:MM`;
//!   `sensitive` is `true`/`false`; `created_at`/`updated_at` are RFC 3339
//!   exactly as in the record's JSON.
//! - Lists (`services`, `agencies`, `assistive`, `barriers`) are joined with
//!   `|`. A `|` or `\` inside an item is escaped with a backslash (`\|`,
//!   `\\`), so any text survives the round trip; [`split_list`] undoes it.
//! - `agencies` is the agency of each service through the service catalogue,
//!   each agency once, in the order of the services. It is derived, for
//!   reading; an importer ignores it.
//! - A barrier is `SERVICE:KIND` or `SERVICE:KIND:NOTE` (the CLI's
//!   `--barrier` form). A `:` in the service name is escaped as `\:`; the
//!   note is everything after the second unescaped `:` and may contain `:`
//!   as is. [`parse_barriers`] reads a cell back.
//! - A backslash before any other character is kept as a plain backslash
//!   when reading, so cells typed by hand (`C:\Users`) read as meant.
//!
//! # Safe to open
//!
//! A spreadsheet opening a CSV takes a cell starting with `=`, `+`, `-` or
//! `@` (or a tab or carriage return before one) for a formula, so a note
//! typed as `=HYPERLINK(…)` would run. In `--excel` CSV, the one made for
//! spreadsheets, such text cells get a leading apostrophe, as OWASP
//! advises ([`excel_cell`]); the importer removes exactly that apostrophe
//! from an `--excel` CSV ([`excel_uncell`]), so the round trip holds.
//! Plain CSV and JSONL are for machines and stay raw. XLSX cells are typed
//! as text, so the workbook is safe as it is; a value longer than an XLSX
//! cell holds (32,767 characters) stops the export with an error naming
//! the record and the field ([`ExportError::CellTooLong`]).

use std::borrow::Cow;
use std::fmt;
use std::io::{BufWriter, Write};
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use outpost_proto::catalogue::Catalogue;
use outpost_proto::fields::Fields;
use outpost_proto::record::{Barrier, BarrierKind, Course, Kind, Record, Visit};
use outpost_proto::schema::{self, Column, Scope, Shape};
use rust_xlsxwriter as xlsx;
use serde_json::Value;

/// Visit CSV columns, in order (DESIGN.md section 6), from the field table
/// ([`outpost_proto::schema::columns`]).
pub static VISIT_COLUMNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| schema::column_names(Kind::Visit));

/// Course CSV columns, in order: one row per session.
pub static COURSE_COLUMNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| schema::column_names(Kind::Course));

static VISIT_LAYOUT: LazyLock<Vec<Column>> = LazyLock::new(|| schema::columns(Kind::Visit));
static COURSE_LAYOUT: LazyLock<Vec<Column>> = LazyLock::new(|| schema::columns(Kind::Course));

/// XLSX sheet names.
pub const VISIT_SHEET: &str = "Visits";
pub const COURSE_SHEET: &str = "Courses";

/// Most characters an XLSX cell holds (Excel's limit).
pub const XLSX_MAX_CELL_CHARS: usize = 32_767;

/// What makes a spreadsheet read a CSV cell as a formula (OWASP's list).
const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// An `--excel` CSV text cell: with a leading apostrophe when a
/// spreadsheet would take it for a formula.
pub fn excel_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The inverse of [`excel_cell`], for importing an `--excel` CSV: removes
/// the apostrophe only where the export put one (before a formula start),
/// so a note that really starts with `'` keeps it.
pub fn excel_uncell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// Separator of list items in a cell.
pub const LIST_SEPARATOR: char = '|';

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Xlsx,
}

impl Format {
    pub const ALL: &'static [Format] = &[Format::Csv, Format::Jsonl, Format::Xlsx];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Xlsx => "xlsx",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    /// Case-insensitive, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_lowercase();
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown format '{}'; use one of: csv, jsonl, xlsx",
                    s.trim()
                )
            })
    }
}

/// How to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    pub format: Format,
    /// CSV only: `;`-separated, with a UTF-8 BOM and CRLF line ends, for
    /// Swedish Excel. Ignored by the other formats.
    pub excel: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Visit records written.
    pub visits: u64,
    /// Course records written.
    pub courses: u64,
    /// Data rows (CSV/XLSX, headers not counted) or lines (JSONL).
    pub rows: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "could not write the export: {0}; check that the disk has room and the output file is writable"
    )]
    Io(#[from] std::io::Error),
    #[error(
        "could not write the CSV export: {0}; check that the disk has room and the output file is writable"
    )]
    Csv(#[from] csv::Error),
    #[error(
        "could not build the XLSX workbook: {0}; check that the temporary directory (TMPDIR) is writable and has room, or use --format csv"
    )]
    Xlsx(#[from] xlsx::XlsxError),
    #[error("could not encode a record as JSON: {0}; this is a bug in Outpost, please report it")]
    Json(#[from] serde_json::Error),
    #[error(
        "record {record}: its {field} has {chars} characters, more than the {XLSX_MAX_CELL_CHARS} an XLSX cell holds; export as CSV or JSONL (no such limit), or shorten it with `outpost edit {record}`"
    )]
    CellTooLong {
        record: uuid::Uuid,
        field: &'static str,
        chars: usize,
    },
    #[error(
        "a CSV file holds one kind of record, but this export has both visits and courses; add --kind visit or --kind course (or use --format xlsx or jsonl, which hold both)"
    )]
    MixedKinds,
}

/// Exports `records` to `out` and flushes it; see [`Exporter`].
pub fn export<W: Write>(
    records: impl IntoIterator<Item = Record>,
    catalogue: &Catalogue,
    opts: &ExportOptions,
    out: W,
) -> Result<ExportSummary, ExportError> {
    let mut exporter = Exporter::new(catalogue, opts, out)?;
    for record in records {
        exporter.write(&record)?;
    }
    exporter.finish()
}

/// A streaming export: [`Exporter::new`], [`Exporter::write`] each record
/// (any mix of kinds, in any order), then [`Exporter::finish`], which must be
/// called: it writes the XLSX workbook and flushes buffered output.
pub struct Exporter<'c, W: Write> {
    catalogue: &'c Catalogue,
    only: Option<Kind>,
    sink: Sink<W>,
    summary: ExportSummary,
}

enum Sink<W: Write> {
    Csv {
        // Boxed: the writer's state is far larger than the other variants.
        out: Box<csv::Writer<W>>,
        /// The kind whose header has been written.
        kind: Option<Kind>,
        /// `--excel`: text cells are made safe to open ([`excel_cell`]).
        excel: bool,
    },
    Jsonl(BufWriter<W>),
    Xlsx {
        out: W,
        book: Box<Book>,
    },
}

impl<'c, W: Write> Exporter<'c, W> {
    /// Starts an export; for `excel` CSV this writes the byte order mark.
    pub fn new(
        catalogue: &'c Catalogue,
        opts: &ExportOptions,
        mut out: W,
    ) -> Result<Self, ExportError> {
        let sink = match opts.format {
            Format::Csv => {
                let mut builder = csv::WriterBuilder::new();
                builder.has_headers(false);
                if opts.excel {
                    out.write_all("\u{feff}".as_bytes())?;
                    builder.delimiter(b';').terminator(csv::Terminator::CRLF);
                }
                Sink::Csv {
                    out: Box::new(builder.from_writer(out)),
                    kind: None,
                    excel: opts.excel,
                }
            }
            Format::Jsonl => Sink::Jsonl(BufWriter::new(out)),
            Format::Xlsx => Sink::Xlsx {
                out,
                book: Box::new(Book::new()?),
            },
        };
        Ok(Exporter {
            catalogue,
            only: None,
            sink,
            summary: ExportSummary::default(),
        })
    }

    /// Exports only records of `kind`, skipping others. An empty CSV export
    /// then has that kind's header, and an empty XLSX export that kind's
    /// sheet (without it, both default to visits).
    pub fn only(mut self, kind: Kind) -> Self {
        self.only = Some(kind);
        self
    }

    /// Writes one record: a row (a row per session for a course in CSV and
    /// XLSX) or a JSON line.
    pub fn write(&mut self, record: &Record) -> Result<(), ExportError> {
        let kind = record.kind();
        if self.only.is_some_and(|k| k != kind) {
            return Ok(());
        }
        let rows = match &mut self.sink {
            Sink::Csv {
                out,
                kind: header,
                excel,
            } => {
                match *header {
                    None => {
                        out.write_record(columns(kind))?;
                        *header = Some(kind);
                    }
                    Some(k) if k != kind => return Err(ExportError::MixedKinds),
                    Some(_) => {}
                }
                let rows = cells(record, self.catalogue);
                for row in &rows {
                    for cell in row {
                        match cell {
                            Cell::Text(text) if *excel => {
                                out.write_field(excel_cell(text).as_bytes())?
                            }
                            _ => out.write_field(cell.to_text().as_bytes())?,
                        }
                    }
                    // An empty record ends the one built field by field.
                    out.write_record(std::iter::empty::<&[u8]>())?;
                }
                rows.len()
            }
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, record).map_err(json_error)?;
                out.write_all(b"\n")?;
                1
            }
            Sink::Xlsx { book, .. } => {
                let rows = cells(record, self.catalogue);
                for row in &rows {
                    for (cell, field) in row.iter().zip(columns(kind).iter().copied()) {
                        if let Cell::Text(text) = cell {
                            let chars = text.chars().count();
                            if chars > XLSX_MAX_CELL_CHARS {
                                return Err(ExportError::CellTooLong {
                                    record: record.id,
                                    field,
                                    chars,
                                });
                            }
                        }
                    }
                }
                book.sheet(kind)?.append(&rows)?;
                rows.len()
            }
        };
        match kind {
            Kind::Visit => self.summary.visits += 1,
            Kind::Course => self.summary.courses += 1,
        }
        self.summary.rows += rows as u64;
        Ok(())
    }

    /// Completes the export (header of an empty CSV, the XLSX workbook) and
    /// flushes the output.
    pub fn finish(self) -> Result<ExportSummary, ExportError> {
        self.finish_with_sheets_first(Vec::new())
    }

    /// [`Exporter::finish`], with `front` sheets placed before the records
    /// sheets of an XLSX workbook (the annual report's summary and tables,
    /// made once every record was counted). CSV and JSONL have no sheets;
    /// `front` must be empty for them.
    pub fn finish_with_sheets_first(
        self,
        front: Vec<xlsx::Worksheet>,
    ) -> Result<ExportSummary, ExportError> {
        let default_kind = self.only.unwrap_or(Kind::Visit);
        debug_assert!(front.is_empty() || matches!(self.sink, Sink::Xlsx { .. }));
        match self.sink {
            Sink::Csv { mut out, kind, .. } => {
                if kind.is_none() {
                    out.write_record(columns(default_kind))?;
                }
                out.flush()?;
            }
            Sink::Jsonl(mut out) => out.flush()?,
            Sink::Xlsx { mut out, book } => {
                let bytes = book.finish(default_kind, front)?;
                out.write_all(&bytes)?;
                out.flush()?;
            }
        }
        Ok(self.summary)
    }
}

/// A failed write is an I/O error, whatever layer reports it; only a real
/// encoding failure is a JSON error.
fn json_error(e: serde_json::Error) -> ExportError {
    if e.is_io() {
        ExportError::Io(e.into())
    } else {
        ExportError::Json(e)
    }
}

fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Visit => &VISIT_COLUMNS,
        Kind::Course => &COURSE_COLUMNS,
    }
}

/// One cell, typed so XLSX can hold numbers and dates while CSV prints text.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Text(Cow<'a, str>),
    Int(u64),
    Date(NaiveDate),
    Bool(bool),
    Empty,
}

impl Cell<'_> {
    fn to_text(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(s) => Cow::Borrowed(s.as_ref()),
            Cell::Int(n) => Cow::Owned(n.to_string()),
            Cell::Date(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
            Cell::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Cell::Empty => Cow::Borrowed(""),
        }
    }
}

/// The rows of a record: one for a visit, one per session for a course.
///
/// Cells come from the record's JSON form, column by column of the field
/// table, each rendered by its field's shape; so a field added to the table
/// is exported without a change here.
fn cells(record: &Record, catalogue: &Catalogue) -> Vec<Vec<Cell<'static>>> {
    let fields = record.to_fields();
    match record.kind() {
        Kind::Visit => vec![row(&VISIT_LAYOUT, &fields, None, catalogue)],
        Kind::Course => {
            let sessions = match fields.get("sessions") {
                Some(Value::Array(items)) => items.as_slice(),
                _ => &[],
            };
            if sessions.is_empty() {
                vec![row(&COURSE_LAYOUT, &fields, None, catalogue)]
            } else {
                sessions
                    .iter()
                    .map(|s| row(&COURSE_LAYOUT, &fields, Some(s), catalogue))
                    .collect()
            }
        }
    }
}

/// One row: session columns from `session`, the others from `fields`.
fn row(
    layout: &[Column],
    fields: &Fields,
    session: Option<&Value>,
    catalogue: &Catalogue,
) -> Vec<Cell<'static>> {
    layout
        .iter()
        .map(|col| {
            let value = if col.field.scope == Scope::Session {
                session.and_then(|s| s.get(col.field.name))
            } else {
                fields.get(col.field.name)
            };
            let value = value.unwrap_or(&Value::Null);
            if col.derived {
                derived_cell(col.name, value, catalogue).unwrap_or(Cell::Empty)
            } else {
                field_cell(col.field.shape, value)
            }
        })
        .collect()
}

/// A field's cell, by its shape (see the module docs for the formats).
fn field_cell(shape: Shape, v: &Value) -> Cell<'static> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match (shape, v) {
        (_, Value::Null) => Cell::Empty,
        (Shape::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_or_else(|_| Cell::Text(Cow::Owned(s.clone())), Cell::Date),
        (Shape::Int { .. }, Value::Number(n)) => n.as_u64().map_or(Cell::Empty, Cell::Int),
        (Shape::Bool, Value::Bool(b)) => Cell::Bool(*b),
        (Shape::TextList { .. } | Shape::EnumList(_), v) => {
            Cell::Text(Cow::Owned(join_list(strings(v))))
        }
        (Shape::Barriers, v) => {
            let barriers: Vec<Barrier> = serde_json::from_value(v.clone()).unwrap_or_default();
            Cell::Text(Cow::Owned(join_list_escaped(
                barriers.iter().map(barrier_item),
            )))
        }
        (_, Value::String(s)) => Cell::Text(Cow::Owned(s.clone())),
        (_, other) => Cell::Text(Cow::Owned(other.to_string())),
    }
}

/// A derived (read-only) column's cell from its field's value; `None` for a
/// column this exporter does not know, which a test rules out.
fn derived_cell(column: &str, v: &Value, catalogue: &Catalogue) -> Option<Cell<'static>> {
    match column {
        // Each service's agency through the catalogue, each once, in order.
        "agencies" => {
            let mut agencies: Vec<String> = Vec::new();
            for s in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                let agency = catalogue.resolve(s).agency;
                if !agencies.contains(&agency) {
                    agencies.push(agency);
                }
            }
            Some(Cell::Text(Cow::Owned(join_list(&agencies))))
        }
        _ => None,
    }
}

/// A visit's CSV cells, in [`VISIT_COLUMNS`] order.
pub fn visit_csv_row(record: &Record, _visit: &Visit, catalogue: &Catalogue) -> Vec<String> {
    cells(record, catalogue)
        .swap_remove(0)
        .iter()
        .map(|c| c.to_text().into_owned())
        .collect()
}

/// A course's CSV rows, in [`COURSE_COLUMNS`] order: one per session, or one
/// with empty session cells for a course without sessions.
pub fn course_csv_rows(record: &Record, _course: &Course) -> Vec<Vec<String>> {
    cells(record, builtin_catalogue())
        .iter()
        .map(|row| row.iter().map(|c| c.to_text().into_owned()).collect())
        .collect()
}

/// Courses have no derived columns, so any catalogue will do.
fn builtin_catalogue() -> &'static Catalogue {
    static BUILTIN: LazyLock<Catalogue> = LazyLock::new(Catalogue::builtin);
    &BUILTIN
}

// ---- list cells -------------------------------------------------------------

/// Backslash-escapes `\` and each of `special` in `s`.
fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Joins items with `|`, escaping `|` and `\` inside them.
pub fn join_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    join_list_escaped(items.into_iter().map(|item| {
        let mut out = String::new();
        escape_into(&mut out, item.as_ref(), &[LIST_SEPARATOR]);
        out
    }))
}

/// Joins items that are already escaped.
fn join_list_escaped(items: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(LIST_SEPARATOR);
        }
        out.push_str(&item);
    }
    out
}

/// Splits `s` at unescaped `sep`, into at most `max` parts (the last part
/// keeps the rest), without unescaping.
fn split_unescaped(s: &str, sep: char, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if parts.len() + 1 == max {
            break;
        }
        if c == '\\' {
            // Skip the escaped character, whatever it is; only `\`, `|` and
            // `:` are ever escaped, and a lone `\` before anything else is
            // literal anyway.
            chars.next();
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Undoes the escaping: `\\`, `\|` and `\:` become `\`, `|` and `:`; any
/// other backslash is kept.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, '\\' | '|' | ':')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Reads a list cell back: splits at unescaped `|`, unescapes, trims, and
/// drops empty items (so a blank cell is an empty list).
pub fn split_list(cell: &str) -> Vec<String> {
    split_unescaped(cell, LIST_SEPARATOR, usize::MAX)
        .into_iter()
        .map(|item| unescape(item).trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// One barrier as a list item: `SERVICE:KIND[:NOTE]`, escaped for a
/// `|`-joined cell (see the module docs).
pub fn barrier_item(b: &Barrier) -> String {
    let mut out = String::new();
    escape_into(&mut out, &b.service, &[LIST_SEPARATOR, ':']);
    out.push(':');
    out.push_str(b.kind.as_str());
    if let Some(note) = &b.note {
        out.push(':');
        escape_into(&mut out, note, &[LIST_SEPARATOR]);
    }
    out
}

/// Reads a `barriers` cell back (the inverse of the export's join).
pub fn parse_barriers(cell: &str) -> Result<Vec<Barrier>, String> {
    split_unescaped(cell, LIST_SEPARATOR, usize::MAX)
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .map(parse_barrier_item)
        .collect()
}

/// Reads one escaped barrier item, `SERVICE:KIND[:NOTE]`.
pub fn parse_barrier_item(item: &str) -> Result<Barrier, String> {
    let parts = split_unescaped(item, ':', 3);
    let service = unescape(parts[0]).trim().to_string();
    let kind = parts.get(1).map(|k| unescape(k)).unwrap_or_default();
    if service.is_empty() || kind.trim().is_empty() {
        return Err(format!(
            "barrier '{}' should be SERVICE:KIND or SERVICE:KIND:NOTE, e.g. BankID:login",
            item.trim()
        ));
    }
    let kind: BarrierKind = kind.parse()?;
    let note = parts
        .get(2)
        .map(|n| unescape(n).trim().to_string())
        .filter(|n| !n.is_empty());
    Ok(Barrier {
        service,
        kind,
        note,
    })
}

// ---- XLSX -------------------------------------------------------------------

/// Widest a column is made, in characters; longer notes wrap off-screen
/// rather than pushing every other column out of view.
const MAX_COLUMN_WIDTH: usize = 50;

/// The workbook under construction.
///
/// Sheets use rust_xlsxwriter's constant-memory mode: each finished row goes
/// to a temporary file instead of staying in memory (100,000 visits would
/// otherwise take some 500 MB), which suits us since rows are written in
/// order anyway. They are standalone worksheets pushed into the workbook at
/// the end, so Visits comes first whichever kind arrives first, and a kind
/// that never appears gets no sheet.
struct Book {
    workbook: xlsx::Workbook,
    visits: Option<Sheet>,
    courses: Option<Sheet>,
    header: xlsx::Format,
    date: xlsx::Format,
}

struct Sheet {
    ws: xlsx::Worksheet,
    /// Next row to write.
    row: u32,
    columns: &'static [&'static str],
    /// Widest content per column so far, in characters.
    widths: Vec<usize>,
    date: xlsx::Format,
}

impl Book {
    fn new() -> Result<Book, xlsx::XlsxError> {
        let mut workbook = xlsx::Workbook::new();
        // Checks up front, with an error rather than a panic inside the
        // library, that the temporary directory is writable.
        workbook.set_tempdir(std::env::temp_dir())?;
        Ok(Book {
            workbook,
            visits: None,
            courses: None,
            header: xlsx::Format::new().set_bold(),
            date: xlsx::Format::new().set_num_format("yyyy-mm-dd"),
        })
    }

    fn sheet(&mut self, kind: Kind) -> Result<&mut Sheet, xlsx::XlsxError> {
        let slot = match kind {
            Kind::Visit => &mut self.visits,
            Kind::Course => &mut self.courses,
        };
        if slot.is_none() {
            let ws = self.workbook.new_worksheet_with_constant_memory();
            *slot = Some(Sheet::new(ws, kind, &self.header, &self.date)?);
        }
        Ok(slot.as_mut().expect("created above"))
    }

    fn finish(
        mut self,
        default_kind: Kind,
        front: Vec<xlsx::Worksheet>,
    ) -> Result<Vec<u8>, xlsx::XlsxError> {
        if self.visits.is_none() && self.courses.is_none() {
            // An empty export is still a valid workbook with the headers.
            self.sheet(default_kind)?;
        }
        for sheet in front {
            self.workbook.push_worksheet(sheet);
        }
        for sheet in [self.visits, self.courses].into_iter().flatten() {
            self.workbook.push_worksheet(sheet.finish()?);
        }
        self.workbook.save_to_buffer()
    }
}

impl Sheet {
    fn new(
        mut ws: xlsx::Worksheet,
        kind: Kind,
        header: &xlsx::Format,
        date: &xlsx::Format,
    ) -> Result<Sheet, xlsx::XlsxError> {
        let (name, columns) = match kind {
            Kind::Visit => (VISIT_SHEET, &VISIT_COLUMNS[..]),
            Kind::Course => (COURSE_SHEET, &COURSE_COLUMNS[..]),
        };
        ws.set_name(name)?;
        for (col, title) in (0u16..).zip(columns.iter()) {
            ws.write_string_with_format(0, col, *title, header)?;
        }
        Ok(Sheet {
            ws,
            row: 1,
            columns,
            widths: columns.iter().map(|c| c.chars().count()).collect(),
            date: date.clone(),
        })
    }

    fn append(&mut self, rows: &[Vec<Cell<'_>>]) -> Result<(), xlsx::XlsxError> {
        for cells in rows {
            for ((col, cell), width) in (0u16..).zip(cells).zip(self.widths.iter_mut()) {
                let row = self.row;
                let shown = match cell {
                    Cell::Empty => 0,
                    Cell::Text(s) => {
                        self.ws.write_string(row, col, s.as_ref())?;
                        s.chars().count()
                    }
                    Cell::Int(n) => {
                        // u16 values in practice: exact in an f64.
                        self.ws.write_number(row, col, *n as f64)?;
                        n.to_string().len()
                    }
                    Cell::Date(d) => {
                        write_date(&mut self.ws, row, col, *d, &self.date)?;
                        10
                    }
                    Cell::Bool(b) => {
                        self.ws.write_boolean(row, col, *b)?;
                        5
                    }
                };
                *width = (*width).max(shown);
            }
            self.row += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<xlsx::Worksheet, xlsx::XlsxError> {
        let last_col = (self.columns.len() - 1) as u16;
        self.ws.set_freeze_panes(1, 0)?;
        self.ws
            .autofilter(0, 0, self.row.saturating_sub(1), last_col)?;
        for (col, width) in (0u16..).zip(&self.widths) {
            // +2: room for the filter button beside the header text.
            let width = (*width).min(MAX_COLUMN_WIDTH) + 2;
            self.ws.set_column_width(col, width as f64)?;
        }
        Ok(self.ws)
    }
}

/// A real Excel date; as text for a year Excel cannot show (before 1900).
fn write_date(
    ws: &mut xlsx::Worksheet,
    row: u32,
    col: u16,
    d: NaiveDate,
    format: &xlsx::Format,
) -> Result<(), xlsx::XlsxError> {
    let excel = u16::try_from(d.year())
        .ok()
        .and_then(|y| xlsx::ExcelDateTime::from_ymd(y, d.month() as u8, d.day() as u8).ok());
    match excel {
        Some(date) => ws.write_date_with_format(row, col, &date, format)?,
        None => ws.write_string(row, col, d.format("%Y-%m-%d").to_string())?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveTime};
    use outpost_proto::Body;
    use outpost_proto::record::Session;
    use outpost_proto::record::{AgeBand, Assistive, Category, Channel, Outcome};
    use std::io::Cursor;
    use uuid::Uuid;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn record(body: Body) -> Record {
        Record {
            id: Uuid::parse_str("6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b").unwrap(),
            org: "mjolby".into(),
            site: "Mjölby bibliotek".into(),
            staff: "AB".into(),
            device: "d1e5c0de-0000-4000-8000-000000000001".into(),
            created_at: DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap(),
            updated_at: DateTime::parse_from_rfc3339("2025-03-05T08:00:30.5Z").unwrap(),
            body,
        }
    }

    fn visit() -> Record {
        record(Body::Visit(Visit {
            date: d("2025-03-04"),
            time: Some(NaiveTime::from_hms_opt(9, 5, 0).unwrap()),
            minutes: 30,
            channel: Channel::DropIn,
            services: vec![
                "BankID".into(),
                "Mobilt BankID".into(),
                "Skola".into(),
                "Okänd | tjänst".into(),
            ],
            category: Category::EService,
            outcome: Outcome::Referred,
            referred_to: Some("Kundtjänst".into()),
            age_band: AgeBand::From65To79,
            language: "sv".into(),
            assistive: vec![Assistive::Interpreter, Assistive::LargeText],
            barriers: vec![
                Barrier {
                    service: "BankID".into(),
                    kind: BarrierKind::Login,
                    note: None,
                },
                Barrier {
                    service: "Konstig:tjänst".into(),
                    kind: BarrierKind::Form,
                    note: Some("fält 3: datum | tid, C:\\temp".into()),
                },
            ],
            sensitive: true,
            note: Some("Hjälpte med \"deklaration\", steg 1; sen klart\nny rad".into()),
        }))
    }

    fn course(sessions: Vec<Session>) -> Record {
        let mut r = record(Body::Course(Course {
            title: "Nybörjarkurs internet".into(),
            partner: Some("SeniorNet".into()),
            target_group: None,
            sessions,
            note: None,
        }));
        r.id = Uuid::parse_str("00000000-0000-4000-8000-000000000002").unwrap();
        r
    }

    fn session(id: &str, date: &str, participants: u16) -> Session {
        Session {
            id: id.into(),
            date: d(date),
            time: None,
            minutes: 90,
            participants,
            instructor: Some("CD".into()),
            note: None,
        }
    }

    fn run(
        records: Vec<Record>,
        format: Format,
        excel: bool,
    ) -> Result<(Vec<u8>, ExportSummary), ExportError> {
        let mut out = Vec::new();
        let summary = export(
            records,
            &Catalogue::builtin(),
            &ExportOptions { format, excel },
            &mut out,
        )?;
        Ok((out, summary))
    }

    fn csv_rows(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(bytes)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn visit_csv_header_is_exact() {
        let (bytes, _) = run(vec![visit()], Format::Csv, false).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(
            "id,org,site,staff,date,time,minutes,channel,services,agencies,category,outcome,\
             referred_to,age_band,language,assistive,barriers,sensitive,note,device,created_at,\
             updated_at\n"
        ));
    }

    #[test]
    fn visit_row_has_every_value_in_its_column() {
        let (bytes, summary) = run(vec![visit()], Format::Csv, false).unwrap();
        assert_eq!(
            summary,
            ExportSummary {
                visits: 1,
                courses: 0,
                rows: 1
            }
        );
        let rows = csv_rows(&bytes, b',');
        assert_eq!(rows.len(), 2);
        let row: Vec<(&str, &str)> = VISIT_COLUMNS
            .iter()
            .copied()
            .zip(rows[1].iter().map(String::as_str))
            .collect();
        assert_eq!(
            row,
            [
                ("id", "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"),
                ("org", "mjolby"),
                ("site", "Mjölby bibliotek"),
                ("staff", "AB"),
                ("date", "2025-03-04"),
                ("time", "09:05"),
                ("minutes", "30"),
                ("channel", "drop_in"),
                ("services", "BankID|Mobilt BankID|Skola|Okänd \\| tjänst"),
                // BankID and Mobilt BankID share an agency: listed once.
                ("agencies", "BankID (bankerna)|Kommunen|unknown"),
                ("category", "e_service"),
                ("outcome", "referred"),
                ("referred_to", "Kundtjänst"),
                ("age_band", "65_79"),
                ("language", "sv"),
                ("assistive", "interpreter|large_text"),
                (
                    "barriers",
                    "BankID:login|Konstig\\:tjänst:form:fält 3: datum \\| tid, C:\\\\temp"
                ),
                ("sensitive", "true"),
                (
                    "note",
                    "Hjälpte med \"deklaration\", steg 1; sen klart\nny rad"
                ),
                ("device", "d1e5c0de-0000-4000-8000-000000000001"),
                ("created_at", "2025-03-04T10:15:00+01:00"),
                ("updated_at", "2025-03-05T08:00:30.500Z"),
            ]
        );
        // The same cells the public helper gives.
        let r = visit();
        let Body::Visit(v) = &r.body else {
            unreachable!()
        };
        assert_eq!(visit_csv_row(&r, v, &Catalogue::builtin()), rows[1]);
    }

    #[test]
    fn timestamps_match_the_record_json() {
        let r = visit();
        let json = serde_json::to_value(&r).unwrap();
        let Body::Visit(v) = &r.body else {
            unreachable!()
        };
        let row = visit_csv_row(&r, v, &Catalogue::builtin());
        assert_eq!(json["created_at"], row[20]);
        assert_eq!(json["updated_at"], row[21]);
    }

    #[test]
    fn optional_values_are_empty_cells() {
        let mut r = visit();
        if let Body::Visit(v) = &mut r.body {
            v.time = None;
            v.referred_to = None;
            v.note = None;
            v.assistive.clear();
            v.barriers.clear();
            v.services.clear();
            v.sensitive = false;
        }
        let (bytes, _) = run(vec![r], Format::Csv, false).unwrap();
        let row = &csv_rows(&bytes, b',')[1];
        for (i, col) in VISIT_COLUMNS.iter().enumerate() {
            let want_empty = matches!(
                *col,
                "time"
                    | "referred_to"
                    | "note"
                    | "assistive"
                    | "barriers"
                    | "services"
                    | "agencies"
            );
            assert_eq!(row[i].is_empty(), want_empty, "{col}: {:?}", row[i]);
        }
        assert_eq!(row[17], "false");
    }

    #[test]
    fn lists_and_barriers_round_trip() {
        let r = visit();
        let Body::Visit(v) = &r.body else {
            unreachable!()
        };
        let row = visit_csv_row(&r, v, &Catalogue::builtin());
        assert_eq!(split_list(&row[8]), v.services);
        assert_eq!(split_list(&row[15]), ["interpreter", "large_text"]);
        assert_eq!(parse_barriers(&row[16]).unwrap(), v.barriers);
        assert!(split_list("").is_empty());
        assert_eq!(split_list(" a | b ||"), ["a", "b"]);
        // Typed by hand: a lone backslash stays.
        assert_eq!(split_list("C:\\Users|x"), ["C:\\Users", "x"]);
        let b = parse_barrier_item("1177:navigation:hittade inte: menyn").unwrap();
        assert_eq!(b.note.as_deref(), Some("hittade inte: menyn"));
        assert!(
            parse_barrier_item("1177")
                .unwrap_err()
                .contains("SERVICE:KIND")
        );
        assert!(
            parse_barriers("1177:flying")
                .unwrap_err()
                .contains("navigation")
        );
    }

    #[test]
    fn course_rows_are_one_per_session() {
        let records = vec![
            course(vec![
                session("s1", "2025-03-04", 8),
                session("s2", "2025-03-11", 6),
            ]),
            course(vec![]),
        ];
        let (bytes, summary) = run(records, Format::Csv, false).unwrap();
        assert_eq!(
            summary,
            ExportSummary {
                visits: 0,
                courses: 2,
                rows: 3
            }
        );
        let rows = csv_rows(&bytes, b',');
        assert_eq!(rows[0], *COURSE_COLUMNS);
        assert_eq!(
            rows[1],
            [
                "00000000-0000-4000-8000-000000000002",
                "mjolby",
                "Mjölby bibliotek",
                "AB",
                "Nybörjarkurs internet",
                "SeniorNet",
                "",
                "",
                "s1",
                "2025-03-04",
                "",
                "90",
                "8",
                "CD",
                "",
                "d1e5c0de-0000-4000-8000-000000000001",
                "2025-03-04T10:15:00+01:00",
                "2025-03-05T08:00:30.500Z",
            ]
        );
        assert_eq!(rows[2][8], "s2");
        assert_eq!(rows[2][12], "6");
        // The course without sessions: one row, session cells empty.
        assert_eq!(rows[3][4], "Nybörjarkurs internet");
        assert!(rows[3][8..15].iter().all(String::is_empty), "{:?}", rows[3]);
        assert_eq!(rows[3][15], "d1e5c0de-0000-4000-8000-000000000001");
    }

    #[test]
    fn csv_refuses_mixed_kinds_with_advice() {
        let err = run(vec![visit(), course(vec![])], Format::Csv, false).unwrap_err();
        assert!(matches!(err, ExportError::MixedKinds));
        let msg = err.to_string();
        assert!(
            msg.contains("--kind visit") && msg.contains("--kind course"),
            "{msg}"
        );
    }

    #[test]
    fn only_skips_other_kinds_and_sets_the_empty_header() {
        let catalogue = Catalogue::builtin();
        let opts = ExportOptions {
            format: Format::Csv,
            excel: false,
        };
        let mut out = Vec::new();
        let mut ex = Exporter::new(&catalogue, &opts, &mut out)
            .unwrap()
            .only(Kind::Course);
        ex.write(&visit()).unwrap();
        let summary = ex.finish().unwrap();
        assert_eq!(summary, ExportSummary::default());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", COURSE_COLUMNS.join(","))
        );
    }

    #[test]
    fn an_empty_csv_export_has_the_visit_header() {
        let (bytes, summary) = run(vec![], Format::Csv, false).unwrap();
        assert_eq!(summary.rows, 0);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!("{}\n", VISIT_COLUMNS.join(","))
        );
    }

    #[test]
    fn excel_csv_has_bom_semicolons_and_crlf() {
        let (bytes, _) = run(vec![visit()], Format::Csv, true).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBFid;org;site;staff;date;"));
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        assert!(text.lines().next().unwrap().ends_with(";updated_at"));
        assert!(text.contains("updated_at\r\n"));
        // The note holds a ';', so it is quoted; parsing gives it back whole.
        let rows = csv_rows(&bytes[3..], b';');
        assert_eq!(
            rows[1][18],
            "Hjälpte med \"deklaration\", steg 1; sen klart\nny rad"
        );
        let (empty, _) = run(vec![], Format::Csv, true).unwrap();
        assert!(empty.starts_with(b"\xEF\xBB\xBFid;"));
    }

    #[test]
    fn jsonl_parses_back_to_equal_records() {
        let records = vec![
            visit(),
            course(vec![session("s1", "2025-03-04", 8)]),
            course(vec![]),
        ];
        let (bytes, summary) = run(records.clone(), Format::Jsonl, false).unwrap();
        assert_eq!(
            summary,
            ExportSummary {
                visits: 1,
                courses: 2,
                rows: 3
            }
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'));
        let back: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, records);
    }

    #[test]
    fn xlsx_is_a_zip_with_a_sheet_per_kind() {
        let records = vec![course(vec![session("s1", "2025-03-04", 8)]), visit()];
        let (bytes, summary) = run(records, Format::Xlsx, false).unwrap();
        assert_eq!(
            summary,
            ExportSummary {
                visits: 1,
                courses: 1,
                rows: 2
            }
        );
        assert!(bytes.starts_with(b"PK"), "not a zip");
        // Workbook part names are stored uncompressed in the zip directory.
        let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(has("xl/worksheets/sheet1.xml") && has("xl/worksheets/sheet2.xml"));

        let (only_visits, _) = run(vec![visit()], Format::Xlsx, false).unwrap();
        let has = |needle: &str| {
            only_visits
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        };
        assert!(has("xl/worksheets/sheet1.xml") && !has("xl/worksheets/sheet2.xml"));
    }

    #[test]
    fn an_empty_xlsx_export_is_still_a_workbook() {
        let (bytes, summary) = run(vec![], Format::Xlsx, false).unwrap();
        assert_eq!(summary, ExportSummary::default());
        assert!(bytes.starts_with(b"PK"));
        assert!(bytes.len() > 1000);
    }

    #[test]
    fn xlsx_sheets_are_in_kind_order() {
        let mut book = Book::new().unwrap();
        let course_record = course(vec![session("s1", "2025-03-04", 8)]);
        book.sheet(Kind::Course)
            .unwrap()
            .append(&cells(&course_record, &Catalogue::builtin()))
            .unwrap();
        book.sheet(Kind::Visit).unwrap();
        let sheets = [book.visits.take().unwrap(), book.courses.take().unwrap()];
        assert_eq!(sheets[0].ws.name(), VISIT_SHEET);
        assert_eq!(sheets[1].ws.name(), COURSE_SHEET);
        assert_eq!(sheets[1].row, 2);
        // participants column grew to fit at least its header.
        assert!(sheets[1].widths.iter().all(|w| *w >= 2));
    }

    /// A writer whose disk is full.
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_an_io_error_with_advice() {
        for format in Format::ALL {
            let err = export(
                vec![visit()],
                &Catalogue::builtin(),
                &ExportOptions {
                    format: *format,
                    excel: false,
                },
                Full,
            )
            .unwrap_err();
            let msg = err.to_string();
            assert!(!matches!(err, ExportError::Json(_)), "{format}: {err:?}");
            assert!(
                msg.contains("disk full") && msg.contains("has room"),
                "{format}: {msg}"
            );
        }
    }

    #[test]
    fn format_parses_and_explains_values() {
        assert_eq!("CSV".parse::<Format>(), Ok(Format::Csv));
        assert_eq!(" jsonl".parse::<Format>(), Ok(Format::Jsonl));
        assert_eq!("xlsx".parse::<Format>(), Ok(Format::Xlsx));
        let err = "xls".parse::<Format>().unwrap_err();
        assert!(
            err.contains("'xls'") && err.contains("csv, jsonl, xlsx"),
            "{err}"
        );
    }

    #[test]
    fn streams_into_a_seekable_file_too() {
        let mut cursor = Cursor::new(Vec::new());
        let summary = export(
            vec![visit()],
            &Catalogue::builtin(),
            &ExportOptions {
                format: Format::Xlsx,
                excel: false,
            },
            &mut cursor,
        )
        .unwrap();
        assert_eq!(summary.rows, 1);
        assert!(cursor.get_ref().starts_with(b"PK"));
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// Every derived column of the field table has a cell here: a derived
    /// column added to the table without teaching the export fails.
    #[test]
    fn every_derived_column_is_known() {
        for kind in Kind::ALL {
            for col in schema::columns(*kind) {
                if col.derived {
                    assert!(
                        derived_cell(col.name, &Value::Null, &Catalogue::builtin()).is_some(),
                        "{kind}: derived column {} has no cell",
                        col.name
                    );
                }
            }
        }
    }
}
